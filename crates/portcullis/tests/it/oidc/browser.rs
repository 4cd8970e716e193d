//! The browser of the OIDC tests: manual redirects, a cookie jar, and the login form filled in
//! when the authorization endpoint sends it there.

use std::collections::HashMap;

use portcullis_test_support::Server;

use crate::common::http;

/// What the browser ended with.
#[derive(Debug)]
pub enum Outcome {
    /// A redirect to the client (its query parameters).
    Client(HashMap<String, String>),
    /// Anything else: status and body.
    Page(u16, String),
}

impl Outcome {
    #[track_caller]
    pub fn params(&self) -> &HashMap<String, String> {
        match self {
            Outcome::Client(p) => p,
            Outcome::Page(s, b) => panic!("expected a redirect to the client, got {s}: {b}"),
        }
    }
}

/// A browser: no automatic redirects, a cookie jar.
pub struct Browser {
    http: reqwest::Client,
    pub cookies: HashMap<String, String>,
    base: String,
    /// A configured `publicURL` that differs from `base` (replicas behind one name): locations
    /// under it are sent to `base`, as a load balancer would.
    public: Option<String>,
}

impl Browser {
    pub fn new(server: &Server) -> Browser {
        Browser {
            http: http(),
            cookies: HashMap::new(),
            base: server.base.clone(),
            public: None,
        }
    }

    /// A browser reaching `server` under the public URL `public`.
    pub fn behind(server: &Server, public: &str) -> Browser {
        Browser {
            public: Some(public.trim_end_matches('/').to_owned()),
            ..Browser::new(server)
        }
    }

    fn local(&self, url: &str) -> String {
        match &self.public {
            Some(p) if url.starts_with(p.as_str()) => format!("{}{}", self.base, &url[p.len()..]),
            _ => url.to_owned(),
        }
    }

    fn keep(&mut self, resp: &reqwest::Response) {
        for c in resp.headers().get_all(reqwest::header::SET_COOKIE) {
            let text = c.to_str().unwrap();
            let pair = text.split(';').next().unwrap();
            let (k, v) = pair.split_once('=').unwrap();
            if v.is_empty() || text.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
    }

    fn jar(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    pub async fn get(&mut self, url: &str) -> reqwest::Response {
        let resp = self
            .http
            .get(url)
            .header("cookie", self.jar())
            .send()
            .await
            .unwrap();
        self.keep(&resp);
        resp
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let resp = self
            .http
            .post(url)
            .header("cookie", self.jar())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(&resp);
        resp
    }

    /// Fills in the login form at `url` (the page `/oauth/authorize` sent the browser to).
    pub async fn log_in(&mut self, url: &str, user: &str, password: &str) -> reqwest::Response {
        let page = self.get(url).await.text().await.unwrap();
        let csrf = field(&page, "csrf_token");
        let back = field(&page, "return_to");
        let action = format!("{}/oauth/login", self.base);
        self.post(
            &action,
            &[
                ("csrf_token", &csrf),
                ("return_to", &back),
                ("username", user),
                ("password", password),
            ],
        )
        .await
    }

    /// Runs an authorization request, logging in as `user` when the login page comes, and
    /// following redirects on this server until the browser leaves it.
    pub async fn authorize(
        &mut self,
        query: &[(&str, &str)],
        user: Option<(&str, &str)>,
    ) -> Outcome {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(query)
            .finish();
        let mut url = format!("{}/oauth/authorize?{q}", self.base);
        let mut logged_in = false;
        for _ in 0..6 {
            let resp = self.get(&url).await;
            let status = resp.status().as_u16();
            let Some(loc) = resp
                .headers()
                .get("location")
                .map(|l| self.local(l.to_str().unwrap()))
            else {
                return Outcome::Page(status, resp.text().await.unwrap());
            };
            if !loc.starts_with(&self.base) {
                let parsed = url::Url::parse(&loc).unwrap();
                return Outcome::Client(parsed.query_pairs().into_owned().collect());
            }
            if loc.contains("/oauth/login?") {
                let Some((u, p)) = user.filter(|_| !logged_in) else {
                    return Outcome::Page(status, format!("login page: {loc}"));
                };
                logged_in = true;
                let done = self.log_in(&loc, u, p).await;
                assert_eq!(done.status(), 303, "login failed");
                url = self.local(done.headers()["location"].to_str().unwrap());
                continue;
            }
            url = loc;
        }
        panic!("too many redirects");
    }
}

/// The value of a hidden input in a page.
pub fn field(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {page}"))
        + marker.len();
    let end = page[start..].find('"').unwrap() + start;
    page[start..end]
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
}
