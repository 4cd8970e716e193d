//! The test's browser: redirects followed by hand, the public URL mapped to the server,
//! Portcullis' cookies kept per path.

use portcullis_test_support::Server;
use reqwest::header::{HeaderMap, SET_COOKIE};
use serde_json::Value;

use super::PUBLIC;
use crate::common::http;

/// One response, read in full.
#[derive(Debug, Clone)]
pub struct Hop {
    pub url: String,
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Hop {
    pub fn location(&self) -> Option<String> {
        self.headers
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
    pub fn header(&self, name: &str) -> String {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    }
    /// Every `Set-Cookie` header.
    pub fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }
    /// The `Set-Cookie` of cookie `name`, if any.
    pub fn set_cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
    /// A query parameter of the `Location`.
    pub fn location_param(&self, key: &str) -> Option<String> {
        let url = url::Url::parse(&self.location()?).ok()?;
        url.query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }
}

#[derive(Debug, Clone)]
struct Cookie {
    name: String,
    value: String,
    path: String,
}

/// A browser: redirects followed by hand, Portcullis' cookies kept per path.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<Cookie>,
    /// The `Accept-Language` sent to Portcullis, if any.
    language: Option<String>,
}

impl Browser {
    pub fn new(server: &Server) -> Self {
        Browser {
            http: http(),
            base: server.base.clone(),
            cookies: Vec::new(),
            language: None,
        }
    }

    /// A browser whose requests to Portcullis say `Accept-Language: language`.
    pub fn with_language(server: &Server, language: &str) -> Self {
        Browser {
            language: Some(language.to_owned()),
            ..Browser::new(server)
        }
    }

    /// The CSRF token of the (first) form on a page.
    pub fn form_csrf(page: &Hop) -> String {
        page.body
            .split("name=\"csrf_token\" value=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no CSRF field: {}", page.body))
            .to_owned()
    }

    /// The request URL for `url` (the public URL mapped to the server), and its path when it
    /// goes to Portcullis.
    fn target(&self, url: &str) -> (String, Option<String>) {
        let mapped = if let Some(rest) = url.strip_prefix(PUBLIC) {
            format!("{}{rest}", self.base)
        } else if url.starts_with('/') {
            format!("{}{url}", self.base)
        } else {
            url.to_owned()
        };
        let path = mapped
            .strip_prefix(&self.base)
            .map(|rest| rest.split('?').next().unwrap_or("/").to_owned());
        (mapped, path)
    }

    fn cookie_header(&self, path: &str) -> Option<String> {
        let pairs: Vec<String> = self
            .cookies
            .iter()
            .filter(|c| {
                path == c.path
                    || path.starts_with(&format!("{}/", c.path.trim_end_matches('/')))
                    || c.path == "/"
            })
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    fn store_cookies(&mut self, headers: &HeaderMap) {
        for raw in headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
        {
            let mut parts = raw.split(';').map(str::trim);
            let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            let mut path = "/".to_owned();
            let mut delete = value.is_empty();
            for attr in parts {
                if let Some(p) = attr.strip_prefix("Path=") {
                    path = p.to_owned();
                }
                if attr == "Max-Age=0" {
                    delete = true;
                }
            }
            self.cookies.retain(|c| !(c.name == name && c.path == path));
            if !delete {
                self.cookies.push(Cookie {
                    name: name.to_owned(),
                    value: value.to_owned(),
                    path,
                });
            }
        }
    }

    /// The value of one of Portcullis' cookies.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.value.clone())
    }

    /// Sets (or with `None` removes) a cookie by hand.
    pub fn set(&mut self, name: &str, value: Option<&str>, path: &str) {
        self.cookies.retain(|c| c.name != name);
        if let Some(v) = value {
            self.cookies.push(Cookie {
                name: name.into(),
                value: v.into(),
                path: path.into(),
            });
        }
    }

    async fn send(
        &mut self,
        req: reqwest::RequestBuilder,
        url: String,
        path: Option<String>,
    ) -> Hop {
        let req = match path.as_deref().and_then(|p| self.cookie_header(p)) {
            Some(c) => req.header("cookie", c),
            None => req,
        };
        let req = match (&path, &self.language) {
            (Some(_), Some(l)) => req.header("accept-language", l),
            _ => req,
        };
        let resp = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {url}: {e}"));
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if path.is_some() {
            self.store_cookies(&headers);
        }
        let body = resp.text().await.unwrap_or_default();
        Hop {
            url,
            status,
            headers,
            body,
        }
    }

    /// `GET url` (no redirect followed).
    pub async fn get(&mut self, url: &str) -> Hop {
        let (mapped, path) = self.target(url);
        let req = self.http.get(&mapped);
        self.send(req, url.to_owned(), path).await
    }

    /// `POST url` with a form (no redirect followed).
    pub async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Hop {
        let (mapped, path) = self.target(url);
        let req = self.http.post(&mapped).form(form);
        self.send(req, url.to_owned(), path).await
    }

    /// Follows redirects from `hop` until an answer that is not a redirect (at most 10 hops);
    /// returns every hop, the last being that answer.
    pub async fn follow_from(&mut self, hop: Hop) -> Vec<Hop> {
        let mut hops = vec![hop];
        for _ in 0..10 {
            let last = hops.last().expect("a hop");
            if !matches!(last.status, 301 | 302 | 303 | 307 | 308) {
                return hops;
            }
            let next = last.location().expect("a redirect has a Location");
            let hop = self.get(&next).await;
            hops.push(hop);
        }
        panic!(
            "more than 10 redirects: {:?}",
            hops.iter().map(|h| &h.url).collect::<Vec<_>>()
        );
    }

    /// `GET url` and follow its redirects.
    pub async fn follow(&mut self, url: &str) -> Vec<Hop> {
        let first = self.get(url).await;
        self.follow_from(first).await
    }

    /// Starts a login at `provider` and stops at the redirect back to Portcullis' callback
    /// (the provider's answer), returning that callback URL.
    pub async fn until_callback(&mut self, provider: &str) -> String {
        let start = self.get(&format!("{PUBLIC}/login/{provider}")).await;
        assert_eq!(start.status, 302, "{}", start.body);
        let at_idp = self.get(&start.location().unwrap()).await;
        assert_eq!(
            at_idp.status, 302,
            "the identity provider answered: {}",
            at_idp.body
        );
        at_idp.location().unwrap()
    }
}
