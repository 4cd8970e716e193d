//! Parsing a CAS 2.0/3.0 `serviceValidate` answer (CAS protocol §2.5.2, §2.5.3) with quick-xml.
//!
//! Elements are matched by local name in the CAS namespace `http://www.yale.edu/tp/cas` (or in no namespace, for
//! servers that omit it); attribute values under `<cas:attributes>` are collected by local name, in any namespace,
//! and repeated elements become several values. The `<cas:attribute name=".." value=".."/>` form some servers add
//! next to `<cas:attributes>` duplicates the same data and is ignored.

use std::collections::BTreeMap;

use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

const CAS_NS: &str = "http://www.yale.edu/tp/cas";

/// What a validation answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validation {
    /// `<cas:authenticationSuccess>`: the user and the released attributes (name → values).
    Success {
        /// `<cas:user>`, never empty.
        user: String,
        /// The values under `<cas:attributes>`, by local element name.
        attributes: BTreeMap<String, Vec<String>>,
    },
    /// `<cas:authenticationFailure code="..">message</cas:authenticationFailure>`.
    Failure {
        /// The `code` attribute (`INVALID_TICKET`, ...), trimmed.
        code: String,
        /// The element's text, trimmed.
        message: String,
    },
}

/// Parses a validation answer; `Err` describes why it is not one.
pub fn parse(body: &str) -> Result<Validation, String> {
    let mut reader = NsReader::from_str(body);
    // The open elements, as (is a CAS-namespace or unqualified element, local name).
    let mut path: Vec<(bool, String)> = Vec::new();
    let mut text = String::new();
    let mut user: Option<String> = None;
    let mut attributes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut failure: Option<(String, String)> = None;
    let mut success = false;
    let mut root_seen = false;
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| format!("malformed XML: {e}"))?;
        let cas = match ns {
            ResolveResult::Bound(n) => n.as_ref() == CAS_NS,
            ResolveResult::Unbound => true,
            ResolveResult::Unknown(_) => false,
        };
        match event {
            Event::Start(e) => {
                let name = e.local_name().as_ref().to_owned();
                if path.is_empty() {
                    if !(cas && name == "serviceResponse") {
                        return Err(format!(
                            "the root element is <{name}>, not <cas:serviceResponse>"
                        ));
                    }
                    root_seen = true;
                }
                if cas && name == "authenticationSuccess" && path.len() == 1 {
                    success = true;
                }
                if cas && name == "authenticationFailure" && path.len() == 1 {
                    let code = e
                        .try_get_attribute("code")
                        .ok()
                        .flatten()
                        .and_then(|a| {
                            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .ok()
                                .map(|v| v.trim().to_owned())
                        })
                        .unwrap_or_default();
                    failure = Some((code, String::new()));
                }
                path.push((cas, name));
                text.clear();
            }
            Event::Empty(e) => {
                // An empty attribute element (`<cas:email/>`) is an empty value: nothing to keep.
                drop(e);
            }
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::CData(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => quick_xml::escape::resolve_predefined_entity(r.as_ref())
                        .ok_or_else(|| format!("unknown XML entity &{};", r.as_ref() as &str))?
                        .to_owned(),
                    Err(e) => return Err(format!("bad character reference: {e}")),
                };
                text.push_str(&resolved);
            }
            Event::End(_) => {
                let Some((is_cas, name)) = path.pop() else {
                    return Err("unbalanced XML".into());
                };
                let value = text.trim().to_owned();
                // Only elements at depth 2 and 3 carry data. Deeper ones are not looked at, so a
                // deeply nested answer costs linear time, not depth x elements.
                let parents: Vec<&str> = if path.len() <= 3 {
                    path.iter().map(|(_, n)| n.as_str()).collect()
                } else {
                    Vec::new()
                };
                match parents.as_slice() {
                    ["serviceResponse", "authenticationSuccess"] if is_cas && name == "user" => {
                        user = Some(value);
                    }
                    ["serviceResponse", "authenticationSuccess", "attributes"]
                        if !value.is_empty() =>
                    {
                        attributes.entry(name).or_default().push(value);
                    }
                    ["serviceResponse"] if is_cas && name == "authenticationFailure" => {
                        if let Some(f) = failure.as_mut() {
                            f.1 = value;
                        }
                    }
                    _ => {}
                }
                text.clear();
            }
            Event::Eof if path.is_empty() => break,
            Event::Eof => return Err("truncated XML: the document ends inside an element".into()),
            _ => {}
        }
    }
    if !root_seen {
        return Err("the answer is empty, not a <cas:serviceResponse>".into());
    }
    if let Some((code, message)) = failure {
        return Ok(Validation::Failure { code, message });
    }
    match user {
        Some(user) if success && !user.is_empty() => Ok(Validation::Success { user, attributes }),
        _ => Err(
            "<cas:serviceResponse> has neither a <cas:user> nor an <cas:authenticationFailure>"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_cas3_success_with_attributes() {
        let body = r#"<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">
  <cas:authenticationSuccess>
    <cas:user>alice</cas:user>
    <cas:attributes>
      <cas:email>alice@example.org</cas:email>
      <cas:displayName>Alice &amp; Co &#x263A;</cas:displayName>
      <cas:memberOf>admins</cas:memberOf>
      <cas:memberOf>developers</cas:memberOf>
      <cas:empty/>
    </cas:attributes>
    <cas:attribute name="email" value="ignored@example.org"/>
  </cas:authenticationSuccess>
</cas:serviceResponse>"#;
        let Validation::Success { user, attributes } = parse(body).unwrap() else {
            panic!("not a success")
        };
        assert_eq!(user, "alice");
        assert_eq!(attributes["email"], vec!["alice@example.org"]);
        assert_eq!(attributes["displayName"], vec!["Alice & Co ☺"]);
        assert_eq!(attributes["memberOf"], vec!["admins", "developers"]);
        assert!(!attributes.contains_key("empty"));
    }

    #[test]
    fn parses_failures_and_other_prefixes() {
        let body = r#"<x:serviceResponse xmlns:x="http://www.yale.edu/tp/cas">
 <x:authenticationFailure code="INVALID_TICKET">ticket not found</x:authenticationFailure>
</x:serviceResponse>"#;
        assert_eq!(
            parse(body).unwrap(),
            Validation::Failure {
                code: "INVALID_TICKET".into(),
                message: "ticket not found".into()
            }
        );
        let plain = "<serviceResponse><authenticationSuccess><user>bob</user></authenticationSuccess></serviceResponse>";
        assert!(matches!(parse(plain).unwrap(), Validation::Success { user, .. } if user == "bob"));
    }

    #[test]
    fn refuses_non_cas_documents() {
        for body in [
            "",
            "<html><body>Login</body></html>",
            "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\"><cas:authenticationSuccess></cas:authenticationSuccess></cas:serviceResponse>",
            "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\"><cas:authenticationSuccess><cas:user>a</cas:user>",
            "<other:serviceResponse xmlns:other=\"urn:x\"><other:authenticationSuccess><other:user>a</other:user></other:authenticationSuccess></other:serviceResponse>",
            "yes\nalice\n",
        ] {
            assert!(parse(body).is_err(), "{body:?} must be refused");
        }
    }

    /// Regression (found by review while writing the `cas_xml` fuzz target): every closing tag
    /// collected the names of all open elements, so an answer nested 100 000 deep (well under
    /// the 1 MiB body limit) took on the order of 10^10 steps.
    #[test]
    fn deeply_nested_answers_are_refused_without_quadratic_work() {
        let depth = 100_000;
        let body = format!(
            "<cas:serviceResponse xmlns:cas=\"http://www.yale.edu/tp/cas\"><cas:authenticationSuccess>{}{}</cas:authenticationSuccess></cas:serviceResponse>",
            "<a>".repeat(depth),
            "</a>".repeat(depth)
        );
        assert!(parse(&body).is_err());
    }
}
