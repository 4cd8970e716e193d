//! The `portcullis.ui` block: branding of the login and account pages and the template
//! override directory.
//!
//! Validation is strict where a mistake would break the pages or their accessibility: the
//! primary colour must reach WCAG 2.1 AA contrast (4.5:1) against the white page, the logo must be
//! an http(s) URL or a path on this server, and the templates directory must exist.

use std::path::PathBuf;

use crate::UiOptions;
use crate::error::Report;
use crate::fields::{Field, Fields};

const UI_KEYS: &[&str] = &["templatesDir", "productName", "logoURL", "primaryColor"];

/// Default `productName`.
pub const DEFAULT_PRODUCT_NAME: &str = "Portcullis";
/// Default `primaryColor`: a blue with 6.7:1 contrast against white.
pub const DEFAULT_PRIMARY_COLOR: &str = "#1d4ed8";

/// Reads `portcullis.ui` (absent: the defaults).
pub(crate) fn read(report: &mut Report, field: Option<Field>, parent: &Fields) -> UiOptions {
    let path = parent.key_path("ui");
    let f = Fields::read(
        report,
        field.as_ref().map(|f| f.node),
        &path,
        field.as_ref().and_then(|f| f.line),
        UI_KEYS,
        &|_| None,
    );
    let text = |r: &mut Report, key: &str| {
        f.get(key)
            .and_then(|v| v.string(r).map(|s| (s.trim().to_owned(), v.line, v.path)))
            .filter(|(s, _, _)| !s.is_empty())
    };
    let templates_dir = text(report, "templatesDir").and_then(|(dir, line, path)| {
        let dir = PathBuf::from(dir);
        if dir.is_dir() {
            Some(dir)
        } else {
            report.error(
                line,
                &path,
                format!(
                    "{} is not a directory (it must hold the overriding *.html templates)",
                    dir.display()
                ),
            );
            None
        }
    });
    let product_name = match text(report, "productName") {
        Some((name, line, path))
            if name.chars().count() > 64 || name.chars().any(char::is_control) =>
        {
            report.error(line, &path, "must be at most 64 printable characters");
            DEFAULT_PRODUCT_NAME.to_owned()
        }
        Some((name, _, _)) => name,
        None => DEFAULT_PRODUCT_NAME.to_owned(),
    };
    let logo_url = text(report, "logoURL").and_then(|(logo, line, path)| match check_logo(&logo) {
        Ok(()) => Some(logo),
        Err(m) => {
            report.error(line, &path, m);
            None
        }
    });
    let primary_color = match text(report, "primaryColor") {
        None => DEFAULT_PRIMARY_COLOR.to_owned(),
        Some((color, line, path)) => match check_color(&color) {
            Ok(c) => c,
            Err(m) => {
                report.error(line, &path, m);
                DEFAULT_PRIMARY_COLOR.to_owned()
            }
        },
    };
    UiOptions {
        templates_dir,
        product_name,
        logo_url,
        primary_color,
    }
}

/// An absolute http(s) URL, or a path on this server (`/static/logo.svg`).
fn check_logo(logo: &str) -> Result<(), String> {
    if logo.starts_with('/') && !logo.starts_with("//") {
        return if logo.chars().any(|c| c.is_control() || c.is_whitespace()) {
            Err("a path must not contain spaces or control characters".to_owned())
        } else {
            Ok(())
        };
    }
    match url::Url::parse(logo) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        _ => Err(format!(
            "{logo:?} is neither an http(s) URL nor a path starting with /; write e.g. https://cdn.example.com/logo.svg"
        )),
    }
}

/// `#rgb` or `#rrggbb`, normalised to lower-case `#rrggbb`, with at least 4.5:1 contrast
/// against white (the page background; white button text sits on it too).
pub fn check_color(color: &str) -> Result<String, String> {
    let hex = color.strip_prefix('#').unwrap_or("");
    let full: String = match hex.len() {
        3 => hex.chars().flat_map(|c| [c, c]).collect(),
        6 => hex.to_owned(),
        _ => String::new(),
    };
    if full.is_empty() || !full.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!(
            "{color:?} is not a colour; write #rrggbb or #rgb, e.g. #1d4ed8"
        ));
    }
    let full = full.to_ascii_lowercase();
    let ratio = contrast_with_white(&full);
    if ratio < 4.5 {
        return Err(format!(
            "#{full} has a contrast ratio of {ratio:.1}:1 against white; WCAG 2.1 AA needs 4.5:1 for text, choose a darker colour"
        ));
    }
    Ok(format!("#{full}"))
}

/// WCAG 2.1 contrast ratio of `rrggbb` against white.
fn contrast_with_white(rrggbb: &str) -> f64 {
    let channel = |i: usize| {
        let v = f64::from(u8::from_str_radix(&rrggbb[i..i + 2], 16).unwrap_or(0)) / 255.0;
        if v <= 0.04045 {
            v / 12.92
        } else {
            ((v + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4);
    1.05 / (l + 0.05)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_and_logos() {
        assert_eq!(check_color("#1D4ED8").unwrap(), "#1d4ed8");
        assert_eq!(check_color("#000").unwrap(), "#000000");
        let e = check_color("#ffcc00").unwrap_err();
        assert!(e.contains("contrast ratio of 1.5:1"), "{e}");
        assert!(check_color("blue").is_err());
        assert!(check_color("#12345").is_err());
        assert!(check_color("#gggggg").is_err());
        assert!(check_logo("/assets/logo.svg").is_ok());
        assert!(check_logo("https://cdn.example.com/l.png").is_ok());
        assert!(check_logo("//evil.example/x.png").is_err());
        assert!(check_logo("javascript:alert(1)").is_err());
        assert!(check_logo("logo.png").is_err());
    }
}
