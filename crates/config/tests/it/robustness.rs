//! Hostile and broken input: always an error, never a panic.

use portcullis_config::load_str;

use crate::common::opts;

fn must_fail(text: &str) -> String {
    match load_str(text, None, &opts()) {
        Ok(c) => panic!("{text:?} loaded: {c:?}"),
        Err(e) => {
            assert!(!e.problems.is_empty());
            e.to_string()
        }
    }
}

#[test]
fn garbage_is_an_error() {
    let binary: String = (0u8..=255).map(char::from).collect();
    for text in [
        "\u{0}\u{1}\u{2}garbage",
        binary.as_str(),
        "{{{{",
        "]]]",
        "key: [unclosed",
        "a: 'unterminated",
        "authentication:\n  jwtSecret: s\n bad: indent\n",
        "authentication:\n\tjwtSecret: s\n",
        "- a\n- b\n",
        "just a scalar",
        "42",
        "authentication: 42",
        "authentication: [jwtSecret, s]",
        "authentication:\n  jwtSecret: s\n  oauthOptions:\n    identityProviders: {name: a}\n",
        "authentication:\n  jwtSecret: s\n  oauthOptions:\n    clients: [[], 1, ~]\n",
        "authentication:\n  jwtSecret: s\n  ? [complex, key]\n  : value\n",
        "a: 1\n---\nb: 2\n",
        "authentication: !!binary aGVsbG8=\n",
    ] {
        must_fail(text);
    }
}

#[test]
fn list_where_a_map_is_expected_is_located() {
    let e = must_fail("authentication:\n  - jwtSecret: s\n");
    assert!(
        e.contains("line 1: authentication: expected a map, found a list"),
        "{e}"
    );
}

#[test]
fn syntax_errors_carry_a_line() {
    let e = must_fail("authentication:\n  jwtSecret: s\n  oauthOptions: {a: [}\n");
    assert!(e.starts_with("line 3: invalid YAML: "), "{e}");
}

#[test]
fn alias_bomb_is_refused() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let prev = format!("*a{}", i - 1);
        text.push_str(&format!(
            "a{i}: &a{i} [{}]\n",
            [prev.as_str(); 10].join(", ")
        ));
    }
    text.push_str("authentication: *a9\n");
    let e = must_fail(&text);
    assert!(e.contains("invalid YAML"), "{e}");
}

#[test]
fn deep_nesting_is_refused() {
    let flow = format!(
        "authentication: {}{}\n",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    must_fail(&flow);
    let block: String = (0..500).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
    must_fail(&block);
}

#[test]
fn empty_documents_only_miss_the_secret() {
    for text in ["", "\n", "---\n", "# only a comment\n", "~\n"] {
        let e = must_fail(text);
        assert_eq!(
            e,
            "authentication.jwtSecret: JWT secret MUST not be empty (set authentication.jwtSecret, --jwt-secret or PORTCULLIS_JWT_SECRET; it must be the same on every cluster that shares tokens)",
            "{text:?}"
        );
    }
}

#[test]
fn aliases_and_merge_keys_work_inside_sections() {
    let text = "common: &c {jwtSecret: shared}\nauthentication:\n  <<: *c\n  multipleLogin: true\n";
    let c = load_str(text, None, &opts()).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.authentication.jwt_secret.expose(), "shared");
}

#[test]
fn a_configmap_gets_a_hint() {
    let text = "apiVersion: v1\nkind: ConfigMap\ndata:\n  kubesphere.yaml: |\n    authentication:\n      jwtSecret: s\n";
    let e = load_str(text, None, &opts()).unwrap_err();
    assert!(
        e.problems[0]
            .message
            .contains("JWT secret MUST not be empty")
    );
    assert!(
        e.warnings
            .iter()
            .any(|w| w.line == Some(3) && w.message.contains("ConfigMap")),
        "{e}"
    );
}

#[test]
fn a_broken_section_is_reported_once() {
    let e = must_fail("authentication: [jwtSecret, s]\n");
    assert_eq!(e, "line 1: authentication: expected a map, found a list");
    let e = must_fail("- a\n- b\n");
    assert_eq!(
        e,
        "line 1: expected a map of sections (authentication:, redis:, ...), found a list"
    );
}

#[test]
fn crlf_and_bom_are_fine() {
    let text = "\u{feff}authentication:\r\n  jwtSecret: s\r\n  multipleLogin: nope\r\n";
    let e = must_fail(text);
    assert_eq!(
        e,
        "line 3: authentication.multipleLogin: expected true or false, found a string"
    );
}

#[test]
fn syntax_errors_do_not_echo_values() {
    for text in [
        "authentication:\n  jwtSecret: \"hunter2\\qhunter2\"\n",
        "authentication:\n  jwtSecret: 'hunter2\n  x: y\n",
        "authentication:\n  jwtSecret: hunter2: hunter2\n",
        "authentication:\n  jwtSecret: !!int hunter2\n",
        "authentication:\n  jwtSecret: *hunter2\n",
    ] {
        let e = must_fail(text);
        assert!(!e.contains("hunter2"), "{e}");
    }
}

#[test]
fn oversized_and_non_utf8_files_are_refused() {
    let e = portcullis_config::load_file(std::path::Path::new("/dev/zero"), &opts()).unwrap_err();
    assert!(e.to_string().contains("larger than"), "{e}");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("kubesphere.yaml");
    std::fs::write(&path, b"authentication:\n  jwtSecret: \xff\xfe\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let e = portcullis_config::load_file(&path, &opts()).unwrap_err();
    assert!(e.to_string().contains("not UTF-8"), "{e}");
}
