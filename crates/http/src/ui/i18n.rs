//! Message catalogs (English and Simplified Chinese) and the choice of language: `?lang=`
//! (which the page then remembers in a cookie), the language cookie, `Accept-Language`, English.
//!
//! Every text the pages show is in `i18n/<code>.json`, a flat map from key to text; `{name}`
//! marks a parameter. Templates read `t.key` and fill parameters with the `fmt` filter.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// A supported language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Locale {
    /// English (the fallback).
    En,
    /// Simplified Chinese.
    ZhCn,
}

/// Every locale, in the order of the language switch.
pub const LOCALES: [Locale; 2] = [Locale::En, Locale::ZhCn];

type Catalog = BTreeMap<String, String>;

fn parse(code: &str, json: &str) -> Catalog {
    serde_json::from_str(json).unwrap_or_else(|e| panic!("catalog {code} is invalid JSON: {e}"))
}

impl Locale {
    /// The BCP 47 code (`en`, `zh-CN`), also the `lang` attribute and the `?lang=` value.
    pub fn code(self) -> &'static str {
        match self {
            Locale::En => "en",
            Locale::ZhCn => "zh-CN",
        }
    }

    /// The locale of a `?lang=` value or cookie (exact codes, case-insensitive).
    pub fn from_code(code: &str) -> Option<Locale> {
        LOCALES
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(code.trim()))
    }

    /// The catalog of this locale.
    pub fn catalog(self) -> &'static Catalog {
        static EN: OnceLock<Catalog> = OnceLock::new();
        static ZH: OnceLock<Catalog> = OnceLock::new();
        match self {
            Locale::En => EN.get_or_init(|| parse("en", include_str!("i18n/en.json"))),
            Locale::ZhCn => ZH.get_or_init(|| parse("zh-CN", include_str!("i18n/zh-CN.json"))),
        }
    }

    /// The text of `key` with `{name}` parameters filled in; the English text when this
    /// catalog lacks the key, the key itself when both do (a test keeps that from happening).
    pub fn text(self, key: &str, args: &[(&str, &str)]) -> String {
        let raw = self
            .catalog()
            .get(key)
            .or_else(|| Locale::En.catalog().get(key))
            .map(String::as_str)
            .unwrap_or(key);
        fill(raw, args)
    }
}

/// Replaces `{name}` by its value for each argument.
pub fn fill(raw: &str, args: &[(&str, &str)]) -> String {
    let mut out = raw.to_owned();
    for (name, value) in args {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// The best supported language of an `Accept-Language` header: highest q first, ties in header
/// order. Any `zh` range except the Traditional ones (`zh-TW`, `zh-HK`, `zh-MO`, `zh-Hant`)
/// means Simplified Chinese; `en*` and `*` mean English.
pub fn negotiate(accept_language: &str) -> Option<Locale> {
    let mut best: Option<(f32, Locale)> = None;
    for part in accept_language.split(',') {
        let mut pieces = part.split(';');
        let range = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = pieces
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|v| v.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if q.is_nan() || q <= 0.0 {
            continue;
        }
        let locale = if range == "zh" || range.starts_with("zh-") {
            let traditional = ["zh-tw", "zh-hk", "zh-mo", "zh-hant"]
                .iter()
                .any(|t| range.starts_with(t));
            (!traditional).then_some(Locale::ZhCn)
        } else if range == "en" || range.starts_with("en-") || range == "*" {
            Some(Locale::En)
        } else {
            None
        };
        if let Some(l) = locale
            && best.is_none_or(|(bq, _)| q > bq)
        {
            best = Some((q, l));
        }
    }
    best.map(|(_, l)| l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogs_have_the_same_keys_and_parameters() {
        let en = Locale::En.catalog();
        let zh = Locale::ZhCn.catalog();
        let en_keys: Vec<_> = en.keys().collect();
        let zh_keys: Vec<_> = zh.keys().collect();
        assert_eq!(
            en_keys, zh_keys,
            "en.json and zh-CN.json must have the same keys"
        );
        let params = |s: &str| {
            let mut v: Vec<String> = s
                .split('{')
                .skip(1)
                .filter_map(|p| p.split_once('}').map(|(n, _)| n.to_owned()))
                .collect();
            v.sort();
            v
        };
        for (k, v) in en {
            assert_eq!(params(v), params(&zh[k]), "parameters of {k}");
            assert!(
                !v.trim().is_empty() && !zh[k].trim().is_empty(),
                "{k} is empty"
            );
        }
    }

    #[test]
    fn every_key_a_template_uses_exists() {
        for (name, source) in super::super::TEMPLATES {
            for piece in source.split("t.").skip(1) {
                let key: String = piece
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if key.is_empty() {
                    continue;
                }
                assert!(
                    Locale::En.catalog().contains_key(&key),
                    "{name} uses t.{key}, which is not in the catalogs"
                );
            }
        }
    }

    #[test]
    fn accept_language() {
        assert_eq!(negotiate("zh-CN,zh;q=0.9,en;q=0.8"), Some(Locale::ZhCn));
        assert_eq!(negotiate("en-US,en;q=0.9,zh-CN;q=0.8"), Some(Locale::En));
        assert_eq!(negotiate("fr-FR, zh;q=0.5"), Some(Locale::ZhCn));
        assert_eq!(negotiate("zh-TW"), None);
        assert_eq!(negotiate("de, *;q=0.1"), Some(Locale::En));
        assert_eq!(negotiate("zh;q=0, en;q=0.2"), Some(Locale::En));
        assert_eq!(negotiate(""), None);
        assert_eq!(Locale::from_code("ZH-cn"), Some(Locale::ZhCn));
        assert_eq!(Locale::from_code("fr"), None);
        assert_eq!(
            Locale::ZhCn.text("login_with", &[("name", "GitHub")]),
            "通过 GitHub 登录"
        );
    }
}
