//! The look of the login and account pages: templates (minijinja, embedded in the binary,
//! overridable from `portcullis.ui.templatesDir`), the message catalogs ([`i18n`]), the
//! stylesheet ([`assets`]), CSRF tokens ([`csrf`]), the engine's failure reasons as catalog
//! texts ([`reasons`]) and the per-request [`View`].
//!
//! Everything a template prints is HTML-escaped (autoescape on every template, with the same
//! escaping as [`crate::pages::escape`]); no page has a script or an inline style, so the
//! `Content-Security-Policy` stays `default-src 'none'; style-src 'self'; ...` (plus `img-src`
//! for a configured logo).

pub mod assets;
pub mod csrf;
pub mod i18n;
pub mod reasons;
mod view;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::value::Kwargs;
use minijinja::{AutoEscape, Environment, Error, State, Value};
use portcullis_config::UiOptions;
use serde_json::json;

pub use i18n::Locale;
pub use view::View;

use crate::AppState;
use crate::pages::{escape, public_path, secure_headers};

/// The built-in templates, by name.
pub(crate) const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("login.html", include_str!("templates/login.html")),
    ("confirm.html", include_str!("templates/confirm.html")),
    ("consent.html", include_str!("templates/consent.html")),
    ("error.html", include_str!("templates/error.html")),
    ("account.html", include_str!("templates/account.html")),
    ("logout.html", include_str!("templates/logout.html")),
];

const BASE_CSP: &str =
    "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'";

/// The compiled templates and the branding of one configuration.
pub struct Ui {
    env: Environment<'static>,
    product: String,
    logo_url: Option<String>,
    csp: HeaderValue,
}

/// `{{ t.key|fmt(name=value) }}`: fills the `{name}` parameters of a catalog text.
fn fmt_filter(text: String, kwargs: Kwargs) -> Result<String, Error> {
    let mut out = text;
    for name in kwargs.args() {
        let value: Value = kwargs.get(name)?;
        let value = if value.is_none() || value.is_undefined() {
            String::new()
        } else {
            value.to_string()
        };
        out = out.replace(&format!("{{{name}}}"), &value);
    }
    Ok(out)
}

/// Prints values with [`escape`] (`'` as `&#39;`, `/` untouched) unless marked safe; none and
/// undefined print nothing.
fn formatter(out: &mut minijinja::Output, state: &mut State, value: &Value) -> Result<(), Error> {
    if value.is_none() || value.is_undefined() {
        return Ok(());
    }
    if *state.auto_escape() == AutoEscape::None || value.is_safe() {
        return write!(out, "{value}").map_err(Error::from);
    }
    out.write_str(&escape(&value.to_string()))
        .map_err(Error::from)
}

impl Ui {
    /// Compiles the templates: the built-in ones, each replaced by the file of the same name in
    /// `templatesDir` when there is one (a file that cannot be read or compiled is logged and
    /// the built-in template kept).
    pub fn new(opts: &UiOptions) -> Ui {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| AutoEscape::Html);
        env.set_formatter(formatter);
        env.add_filter("fmt", fmt_filter);
        for (name, builtin) in TEMPLATES {
            let custom = opts.templates_dir.as_ref().and_then(|dir| {
                let path = dir.join(name);
                match std::fs::read_to_string(&path) {
                    Ok(text) => Some((path, text)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                    Err(e) => {
                        tracing::error!(path = %path.display(), error = %e, "cannot read a template override; using the built-in one");
                        None
                    }
                }
            });
            if let Some((path, text)) = custom {
                match env.add_template_owned(name.to_string(), text) {
                    Ok(()) => {
                        tracing::info!(path = %path.display(), "template override in use");
                        continue;
                    }
                    Err(e) => {
                        tracing::error!(path = %path.display(), error = %e, "template override does not compile; using the built-in one");
                    }
                }
            }
            env.add_template(name, builtin)
                .expect("built-in templates compile (tested)");
        }
        let csp = match opts.logo_url.as_deref().and_then(logo_origin) {
            Some(origin) => format!("{BASE_CSP}; img-src 'self' {origin}"),
            None if opts.logo_url.is_some() => format!("{BASE_CSP}; img-src 'self'"),
            None => BASE_CSP.to_owned(),
        };
        Ui {
            env,
            product: opts.product_name.clone(),
            logo_url: opts.logo_url.clone(),
            csp: HeaderValue::from_str(&csp).unwrap_or(HeaderValue::from_static(BASE_CSP)),
        }
    }

    /// The configured product name.
    pub fn product(&self) -> &str {
        &self.product
    }

    /// Renders `template` with `ctx` (a JSON object) plus what every page has: `t` (the
    /// catalog), `lang`, `languages`, `product`, `logo_url`, `csrf`, `request_id`, `assets`,
    /// `home` and `title` (the catalog text of `title_key`).
    pub fn render(
        &self,
        state: &AppState,
        view: &View,
        status: StatusCode,
        template: &str,
        title_key: &str,
        ctx: serde_json::Value,
    ) -> Response {
        let public = state.config().portcullis.public_url.clone();
        let mut ctx = match ctx {
            serde_json::Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        let base = json!({
            "t": view.locale.catalog(),
            "lang": view.locale.code(),
            "languages": view.languages(),
            "product": self.product,
            "logo_url": self.logo_url,
            "csrf": view.csrf,
            "request_id": view.request_id,
            "assets": public_path(&public, "/assets"),
            "home": public_path(&public, "/login"),
            "title": view.locale.text(title_key, &[]),
        });
        if let serde_json::Value::Object(b) = base {
            for (k, v) in b {
                ctx.entry(k).or_insert(v);
            }
        }
        let html = self
            .env
            .get_template(template)
            .and_then(|t| t.render(Value::from(minijinja::value::Serde(&ctx))));
        let (status, html) = match html {
            Ok(h) => (status, h),
            Err(e) => {
                tracing::error!(template, request_id = %view.request_id, error = %e, "rendering a page failed");
                let text = format!(
                    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Error</title></head>\
                     <body><h1>Error</h1><p>The page could not be shown (template error).</p>\
                     <p>Request id: <code>{}</code></p></body></html>\n",
                    escape(&view.request_id)
                );
                (StatusCode::INTERNAL_SERVER_ERROR, text)
            }
        };
        let mut resp = (status, html).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        secure_headers(h);
        h.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
        h.insert(
            header::VARY,
            HeaderValue::from_static("Accept-Language, Cookie"),
        );
        view.set_cookies(h);
        resp
    }
}

/// Lets the page's forms end in a redirect to `url`'s origin (an OpenID Connect client's
/// redirect URI after the consent or sign-in form): browsers apply `form-action` to every
/// redirect after a form submission. Only an http(s) origin is added.
pub fn allow_form_target(mut resp: Response, url: &str) -> Response {
    let Some(origin) = logo_origin(url) else {
        return resp;
    };
    let h = resp.headers_mut();
    let csp = h
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(BASE_CSP)
        .replace(
            "form-action 'self'",
            &format!("form-action 'self' {origin}"),
        );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    resp
}

/// The origin of an absolute logo URL, for `img-src`; `None` for a path on this server.
fn logo_origin(logo: &str) -> Option<String> {
    let url = url::Url::parse(logo).ok()?;
    if !matches!(url.scheme(), "http" | "https") {
        return None;
    }
    let origin = url.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// A timestamp (Unix milliseconds) as `2026-11-28 21:40 UTC`.
pub fn format_time(ms: i64) -> String {
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&fmt).ok())
        .unwrap_or_else(|| "-".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_templates_compile_and_escape() {
        let ui = Ui::new(&UiOptions::default());
        let tmpl = ui
            .env
            .template_from_str("{{ x }}|{{ t|fmt(name=x) }}|{{ n }}")
            .unwrap();
        let out = tmpl
            .render(minijinja::context! { x => "<a href='/x'>&", t => "hi {name}", n => () })
            .unwrap();
        assert_eq!(
            out,
            "&lt;a href=&#39;/x&#39;&gt;&amp;|hi &lt;a href=&#39;/x&#39;&gt;&amp;|"
        );
        assert_eq!(format_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(
            logo_origin("https://cdn.example.com/a/logo.png").as_deref(),
            Some("https://cdn.example.com")
        );
        assert_eq!(logo_origin("/logo.png"), None);
    }
}
