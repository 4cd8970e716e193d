//! Warnings (unknown keys and sections), ignored sections, and secrets kept out of `Debug`.

use crate::common::{errors, load, ok};

#[test]
fn unknown_top_level_sections_are_ignored() {
    let c = ok(r#"
        monitoring:
          endpoint: http://prometheus:9090
        devops:
          jenkinsUrl: http://jenkins
          weird: [1, {a: b}, [c]]
        authorization: {mode: RBAC}
        authentication:
          jwtSecret: s
        multicluster:
          clusterRole: none
        ldap: {host: openldap.kubesphere-system.svc:389}
        s3: {endpoint: http://minio}
        openpitrix: {}
        logging: {host: http://es:9200}
        notification: {endpoint: http://notification-manager}
        alerting: {prometheusEndpoint: http://p}
        auditing: {enable: true}
        events: {host: http://e}
        network: {ippoolType: none}
        servicemesh: {istioPilotHost: http://istio}
        kubeedge: {endpoint: http://k}
        gateway: {watchesPath: /var/helm-charts/watches.yaml}
        sonarQube: {host: http://s}
        metering: {retentionDay: 7d}
        terminal: {image: alpine:3.14}
        gpu: {kinds: []}
        cache: {type: redis}
    "#);
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
}

#[test]
fn misspelled_section_is_a_warning() {
    let problems = errors("authentcation:\n  jwtSecret: s\n");
    assert!(problems[0].message.contains("JWT secret MUST not be empty"));
    let e = load("authentcation:\n  jwtSecret: s\n").unwrap_err();
    assert_eq!(e.warnings.len(), 1);
    assert_eq!(e.warnings[0].line, Some(1));
    assert!(
        e.warnings[0]
            .message
            .contains("did you mean `authentication`?"),
        "{}",
        e.warnings[0]
    );
    assert!(
        e.to_string()
            .contains("warning: line 1: authentcation: unknown section"),
        "{e}"
    );
}

#[test]
fn unknown_key_warning_with_hint() {
    let c = ok(r#"
        authentication:
          jwtSecret: s
          jwtSecrt: typo
          multipleLogins: true
          accessTokenMaxAge: 1h
          oauthOptions:
            clients:
            - name: c
              redirectURLs: [https://x.example/cb]
        portcullis:
          zzz: 1
    "#);
    let w = &c.warnings;
    assert_eq!(w.len(), 5, "{w:#?}");
    assert_eq!(
        w[0],
        "line 3: authentication.jwtSecrt: unknown key, ignored; did you mean `jwtSecret`?"
    );
    assert!(
        w[1].starts_with("line 4: authentication.multipleLogins:")
            && w[1].ends_with("`multipleLogin`?")
    );
    assert!(
        w[2].contains("`accessTokenMaxAge` goes under `authentication.oauthOptions`"),
        "{}",
        w[2]
    );
    assert_eq!(
        w[3],
        "line 9: authentication.oauthOptions.clients[0].redirectURLs: unknown key, ignored; did you mean `redirectURIs`?"
    );
    assert!(
        w[4].starts_with("line 11: portcullis.zzz: unknown key, ignored (known keys: listen,"),
        "{}",
        w[4]
    );
    assert!(!c.authentication.multiple_login);
}

#[test]
fn debug_never_shows_secrets() {
    let c = ok(r#"
        authentication:
          jwtSecret: jwt-VALUE-1
          oauthOptions:
            signKeyData: sign-VALUE-2
            clients:
            - name: c
              secret: client-VALUE-3
            identityProviders:
            - name: ldap
              type: LDAPIdentityProvider
              provider:
                managerPassword: ldap-VALUE-4
                nested: {clientSecret: oidc-VALUE-5}
                host: ldap.example.com
        redis:
          host: r
          password: redis-VALUE-6
        portcullis:
          database: postgres://u:db-VALUE-7@h/d
          redis: redis://:rurl-VALUE-8@h
    "#);
    let debug = format!("{c:?}");
    assert!(!debug.contains("VALUE"), "a secret leaked: {debug}");
    assert!(
        debug.contains("ldap.example.com"),
        "non-secret options stay visible"
    );
}
