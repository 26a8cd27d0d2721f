//! The floor of a full pass's local CPU: the same wire decoders and snapshot writes the pass
//! runs, on the same page bodies, and nothing else (no matching, planning, journal or
//! HTTP). A full pass's CPU is printed as a ratio of it, which, unlike CPU seconds, does not
//! change twofold from one machine to the next.

use okta_telus_sync::store::Store;
use serde_json::Value;

/// Every page body of a full read: Okta's user listing, TELUS's extension listing and its
/// Company Directory, as the fakes serve them.
#[derive(Default)]
pub struct Bodies {
    okta: Vec<Vec<u8>>,
    extensions: Vec<Vec<u8>>,
    directory: Vec<Vec<u8>>,
}

impl Bodies {
    /// Keeps the bodies in files under `dir` (so that they weigh nothing on the passes'
    /// peak RSS) until `load`.
    pub fn save(self, dir: &std::path::Path) {
        std::fs::create_dir_all(dir).expect("pages dir");
        for (kind, pages) in [
            ("okta", &self.okta),
            ("ext", &self.extensions),
            ("dir", &self.directory),
        ] {
            for (i, body) in pages.iter().enumerate() {
                std::fs::write(dir.join(format!("{kind}-{i:06}")), body).expect("page file");
            }
        }
    }

    pub fn load(dir: &std::path::Path) -> Bodies {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .expect("pages dir")
            .map(|e| e.expect("entry").path())
            .collect();
        names.sort();
        let mut bodies = Bodies::default();
        for path in names {
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            let body = std::fs::read(&path).expect("page file");
            match name.split('-').next() {
                Some("okta") => bodies.okta.push(body),
                Some("ext") => bodies.extensions.push(body),
                _ => bodies.directory.push(body),
            }
        }
        bodies
    }
}

/// Reads every page once over plain HTTP (untimed).
pub async fn fetch(okta: &str, telus: &str) -> Bodies {
    let http = reqwest::Client::new();
    let mut bodies = Bodies::default();
    let mut next = Some(format!("{okta}/api/v1/users?limit=200"));
    while let Some(url) = next.take() {
        let resp = http
            .get(&url)
            .header(
                "Authorization",
                format!("SSWS {}", okta_telus_sync::sandbox::OKTA_TOKEN),
            )
            .send()
            .await
            .expect("okta page");
        let links: Vec<String> = resp
            .headers()
            .get_all("link")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_string))
            .collect();
        next = okta_telus_sync::okta::next_link(links.iter().map(String::as_str));
        bodies.okta.push(resp.bytes().await.expect("body").to_vec());
    }
    let token = telus_token(&http, telus).await;
    let get = |path: String| {
        let (http, token) = (&http, &token);
        async move {
            let resp = http
                .get(format!("{telus}{path}"))
                .bearer_auth(token)
                .send()
                .await
                .expect("telus page");
            resp.bytes().await.expect("body").to_vec()
        }
    };
    for page in 1.. {
        let body = get(format!(
            "/restapi/v1.0/account/~/extension?type=User&perPage=1000&page={page}"
        ))
        .await;
        let (_, next) = okta_telus_sync::telus::decode_extension_page(&body).expect("page");
        bodies.extensions.push(body);
        if next.is_none() {
            break;
        }
    }
    for page in 1.. {
        let body = get(format!(
            "/restapi/v1.0/account/~/directory/entries?perPage=2000&page={page}"
        ))
        .await;
        let v: Value = serde_json::from_slice(&body).expect("json");
        let total = v["paging"]["totalPages"].as_u64().unwrap_or(1);
        bodies.directory.push(body);
        if page >= total {
            break;
        }
    }
    bodies
}

async fn telus_token(http: &reqwest::Client, telus: &str) -> String {
    use okta_telus_sync::sandbox::{TELUS_CLIENT_ID, TELUS_CLIENT_SECRET, TELUS_JWT};
    let resp: Value = http
        .post(format!("{telus}/restapi/oauth/token"))
        .basic_auth(TELUS_CLIENT_ID, Some(TELUS_CLIENT_SECRET))
        .form(&[
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", TELUS_JWT),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("token body");
    resp["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// Decodes every body and writes both snapshots to a fresh store at `path`: what any full
/// pass must do at least. Returns the users of each side (a check that it decoded them all).
pub fn run(bodies: &Bodies, path: &std::path::Path) -> (usize, usize) {
    let mut okta = Vec::new();
    for b in &bodies.okta {
        okta.extend(okta_telus_sync::okta::decode_users(b, false).expect("okta page"));
    }
    let mut telus = Vec::new();
    for b in &bodies.extensions {
        telus.extend(
            okta_telus_sync::telus::decode_extension_page(b)
                .expect("page")
                .0,
        );
    }
    let mut entries = 0;
    for b in &bodies.directory {
        entries += okta_telus_sync::telus::decode_directory_page(b)
            .expect("page")
            .len();
    }
    let store = Store::open(path).expect("store");
    store.save_snapshots(&okta, &telus).expect("snapshots");
    std::hint::black_box(entries);
    (okta.len(), telus.len())
}
