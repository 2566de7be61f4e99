//! The web application over plain HTTP, as the tests drive it without a
//! browser: a client that follows no redirect and keeps no cookie, form
//! bodies, cookies, the CSRF field, a login and a session.

/// A client that follows no redirect and keeps no cookie: each test says
/// what it sends.
pub fn bare() -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(cardhub_core::adapter::http::plain_http_tls().unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// `application/x-www-form-urlencoded` of `fields`.
pub fn form(fields: &[(&str, &str)]) -> String {
    let encode = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                    (b as char).to_string()
                }
                b' ' => "+".into(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    fields
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// The `Set-Cookie` header setting `name`.
pub fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_string)
}

/// A cookie's value from its `Set-Cookie` header.
pub fn value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_string()
}

/// The hidden CSRF field's value in a page.
pub fn csrf_of(html: &str) -> String {
    let re = regex::Regex::new(r#"name="csrf" value="([0-9a-f]{64})""#).unwrap();
    re.captures(html).expect("a CSRF field")[1].to_string()
}

/// A login over HTTP, sending `cookie` along: the response.
pub async fn http_login(
    api: &str,
    name: &str,
    password: &str,
    cookie: Option<&str>,
) -> reqwest::Response {
    let client = bare();
    let page = client.get(format!("{api}/login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let login_cookie = set_cookie(&page, "cardhub_login").expect("a login cookie");
    let csrf = csrf_of(&page.text().await.unwrap());
    assert_eq!(value(&login_cookie), csrf);
    let mut cookies = format!("cardhub_login={csrf}");
    if let Some(c) = cookie {
        cookies.push_str(&format!("; cardhub_session={c}"));
    }
    client
        .post(format!("{api}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookies)
        .body(form(&[
            ("name", name),
            ("password", password),
            ("csrf", &csrf),
        ]))
        .send()
        .await
        .unwrap()
}

/// A session of `name` over HTTP: its cookie value and its CSRF token
/// (from the page the login leads to, after at most one more redirect).
pub async fn http_session(api: &str, name: &str, password: &str) -> (String, String) {
    let response = http_login(api, name, password, None).await;
    assert_eq!(response.status(), 303);
    let session = value(&set_cookie(&response, "cardhub_session").unwrap());
    let cookie = format!("cardhub_session={session}");
    let mut page = bare()
        .get(format!("{api}{}", location(&response)))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    if page.status() == 303 {
        let next = format!("{api}{}", location(&page));
        page = bare()
            .get(next)
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
    }
    assert_eq!(page.status(), 200);
    (session, csrf_of(&page.text().await.unwrap()))
}

/// Where a response redirects to.
pub fn location(response: &reqwest::Response) -> &str {
    response.headers()["location"].to_str().unwrap()
}

/// A user signed in over plain HTTP: its session cookie and CSRF token.
pub struct SignedIn {
    pub api: String,
    pub cookie: String,
    pub csrf: String,
}

impl SignedIn {
    /// Logs `name` in at `api` with `password`.
    pub async fn log_in(api: &str, name: &str, password: &str) -> SignedIn {
        let (session, csrf) = http_session(api, name, password).await;
        SignedIn {
            api: api.to_string(),
            cookie: format!("cardhub_session={session}"),
            csrf,
        }
    }

    /// The status and the body of page `path`.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = bare()
            .get(format!("{}{path}", self.api))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// Posts `fields` with `csrf`: the status, where it redirects to (if
    /// it does), the body.
    pub async fn post_with(
        &self,
        path: &str,
        fields: &[(&str, &str)],
        csrf: &str,
    ) -> (u16, String, String) {
        let mut fields = fields.to_vec();
        fields.push(("csrf", csrf));
        let response = bare()
            .post(format!("{}{path}", self.api))
            .header("cookie", &self.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(&fields))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let to = if status == 303 {
            location(&response).to_string()
        } else {
            String::new()
        };
        (status, to, response.text().await.unwrap())
    }

    /// [`SignedIn::post_with`] the session's own CSRF token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> (u16, String, String) {
        self.post_with(path, fields, &self.csrf).await
    }
}
