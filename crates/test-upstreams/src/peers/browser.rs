//! [`Browser`]: just enough of a browser to drive the peers' login pages from Rust (no curl): redirects are
//! reported, not followed, cookies are kept (by name, for one host), and hidden form fields can be scraped.

use std::collections::BTreeMap;
use std::sync::Mutex;

use url::Url;

/// One answer.
#[derive(Debug, Clone)]
pub struct Page {
    /// HTTP status.
    pub status: u16,
    /// The `Location` header, resolved against the request URL.
    pub location: Option<Url>,
    /// The body as text.
    pub body: String,
}

impl Page {
    /// The `value` of the `<input>` named `name` (attribute order `name` before `value`, or any order within the
    /// tag), HTML entities for `&`, `"`, `<`, `>` decoded.
    pub fn input_value(&self, name: &str) -> Option<String> {
        let needle = format!("name=\"{name}\"");
        self.body.split("<input").skip(1).find_map(|rest| {
            let tag = rest.split('>').next()?;
            if !tag.contains(&needle) {
                return None;
            }
            let value = tag.split("value=\"").nth(1)?.split('"').next()?;
            Some(
                value
                    .replace("&quot;", "\"")
                    .replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&#x27;", "'")
                    .replace("&amp;", "&"),
            )
        })
    }
}

/// A cookie-keeping HTTP client that does not follow redirects.
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    cookies: Mutex<BTreeMap<String, String>>,
}

impl Default for Browser {
    fn default() -> Self {
        Browser::new()
    }
}

impl Browser {
    /// A fresh browser (no cookies).
    ///
    /// # Panics
    ///
    /// If no rustls crypto provider is installed in this test binary.
    pub fn new() -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(20))
            .build()
            .expect(
                "an HTTP client for the test browser (is the rustls crypto provider installed?)",
            );
        Browser {
            http,
            cookies: Mutex::new(BTreeMap::new()),
        }
    }

    fn cookie_header(&self) -> String {
        let jar = self.cookies.lock().unwrap_or_else(|e| e.into_inner());
        jar.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn keep_cookies(&self, response: &reqwest::Response) {
        let mut jar = self.cookies.lock().unwrap_or_else(|e| e.into_inner());
        for value in response.headers().get_all(reqwest::header::SET_COOKIE) {
            let Ok(value) = value.to_str() else { continue };
            let mut parts = value.split(';');
            let Some((name, val)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let lower = value.to_ascii_lowercase();
            let expired = lower.contains("max-age=0") || lower.contains("expires=thu, 01 jan 1970");
            if expired || val.trim().is_empty() {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_owned(), val.trim().to_owned());
            }
        }
    }

    async fn send(&self, url: &Url, request: reqwest::RequestBuilder) -> Result<Page, String> {
        let request = request.header(reqwest::header::COOKIE, self.cookie_header());
        let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
        self.keep_cookies(&response);
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url.join(l).ok());
        let body = response.text().await.map_err(|e| format!("{url}: {e}"))?;
        Ok(Page {
            status,
            location,
            body,
        })
    }

    /// GET `url`.
    pub async fn get(&self, url: &Url) -> Result<Page, String> {
        self.send(url, self.http.get(url.clone())).await
    }

    /// POST `form` (urlencoded) to `url`, with a `Referer` (Django's CSRF check wants one).
    pub async fn post_form(
        &self,
        url: &Url,
        form: &[(&str, &str)],
        referer: &Url,
    ) -> Result<Page, String> {
        let request = self
            .http
            .post(url.clone())
            .form(form)
            .header(reqwest::header::REFERER, referer.as_str());
        self.send(url, request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrapes_hidden_inputs() {
        let page = Page {
            status: 200,
            location: None,
            body: r#"<form><input type="hidden" name="lt" value="LT-1&amp;2"><input name="csrfmiddlewaretoken" type="hidden" value="abc"/></form>"#.into(),
        };
        assert_eq!(page.input_value("lt").as_deref(), Some("LT-1&2"));
        assert_eq!(
            page.input_value("csrfmiddlewaretoken").as_deref(),
            Some("abc")
        );
        assert_eq!(page.input_value("missing"), None);
    }
}
