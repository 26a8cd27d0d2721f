//! In-process fake Okta and TELUS servers on loopback (real HTTP, ephemeral ports) that speak
//! the real wire formats; the demo a new user runs first, and the peers of the end-to-end
//! tests.

pub mod faults;
// Handlers return an early `Response` as their error; its size does not matter in a fake.
#[allow(clippy::result_large_err)]
pub mod okta;
pub mod okta_apps;
mod okta_import;
mod okta_logs;
mod routes;
pub mod scale;
pub mod seed;
pub mod served;
#[allow(clippy::result_large_err)]
pub mod telus;
pub mod telus_gateway;
pub mod telus_ws;

use crate::config::{Config, OktaConfig, OktaScope, Safety, Schedule, TelusConfig};
use crate::reconcile::policy::Policy;
use secrecy::SecretString;
use std::path::Path;

pub const OKTA_TOKEN: &str = "sandbox-okta-api-token";
pub const TELUS_CLIENT_ID: &str = "sandbox-client-id";
pub const TELUS_CLIENT_SECRET: &str = "sandbox-client-secret";
pub const TELUS_JWT: &str = "sandbox.jwt.credential";

/// The demo user whose profile source is Active Directory.
pub const DEMO_AD_USER: &str = "00u6far";

/// Both fakes, running.
pub struct Sandbox {
    pub okta: okta::FakeOkta,
    pub telus: telus::FakeTelus,
}

impl Sandbox {
    /// Starts both fakes with the demo directory.
    pub async fn start_seeded() -> std::io::Result<Sandbox> {
        let sb = Sandbox::start(
            seed::with_known_primary_phones(seed::okta_users()),
            seed::telus_extensions(),
            seed::telus_numbers(),
        )
        .await?;
        {
            let mut st = sb.telus.lock();
            for (ext, cc) in seed::TELUS_COST_CENTERS {
                st.custom_values
                    .entry(*ext)
                    .or_default()
                    .insert("cf1".into(), cc.to_string());
            }
        }
        Ok(sb)
    }

    /// The demo: the seeded directory, where Farid was imported from Active Directory (his
    /// `credentials.provider.type`), so Okta refuses API writes to the attributes that
    /// inherit from his profile source: the default for every attribute.
    pub async fn start_demo() -> std::io::Result<Sandbox> {
        let sb = Sandbox::start_seeded().await?;
        if let Some(u) = sb
            .okta
            .lock()
            .users
            .iter_mut()
            .find(|u| u.id == DEMO_AD_USER)
        {
            u.provider = "ACTIVE_DIRECTORY";
        }
        Ok(sb)
    }

    /// The demo's policy: the default table plus the cost-center custom field row shipped
    /// (commented out) in `sync.toml`.
    pub fn demo_policy() -> Policy {
        let mut p = crate::reconcile::policy::Policy::builtin();
        p.rules.push(crate::reconcile::policy::AttrRule {
            okta_attr: "costCenter".into(),
            telus: crate::reconcile::policy::TelusSide::Field {
                path: "customFields.Cost Center".into(),
                writable: true,
            },
            master: crate::reconcile::policy::Master::Priority(vec![crate::model::System::Okta]),
            normalize: crate::reconcile::policy::Normalize::None,
            create_only: false,
        });
        p
    }

    pub async fn start(
        okta_users: Vec<okta::FakeOktaUser>,
        extensions: Vec<telus::FakeExtension>,
        numbers: Vec<telus::FakeNumber>,
    ) -> std::io::Result<Sandbox> {
        let okta = okta::FakeOkta::start(okta::OktaState::new(okta_users, OKTA_TOKEN)).await?;
        let telus = telus::FakeTelus::start(telus::TelusState::new(
            extensions,
            numbers,
            TELUS_CLIENT_ID,
            TELUS_CLIENT_SECRET,
            TELUS_JWT,
        ))
        .await?;
        Ok(Sandbox { okta, telus })
    }

    /// A configuration pointing at the fakes, with the given policy and store file.
    pub fn config(&self, policy: Policy, store_path: &Path) -> Config {
        config_for(&self.okta.url(), &self.telus.url(), policy, store_path)
    }
}

/// A configuration pointing at fakes on these URLs (the sandbox's credentials).
pub fn config_for(okta_url: &str, telus_url: &str, policy: Policy, store_path: &Path) -> Config {
    {
        Config {
            okta: OktaConfig {
                url: url::Url::parse(okta_url).expect("loopback URL"),
                auth: crate::config::OktaAuth::Ssws(SecretString::from(OKTA_TOKEN)),
                scope: OktaScope::All,
                write_concurrency: 4,
                rate_limit_percent: 50,
                app_id: None,
            },
            telus: TelusConfig {
                url: url::Url::parse(telus_url).expect("loopback URL"),
                brand_id: "7310".into(),
                client_id: TELUS_CLIENT_ID.into(),
                client_secret: SecretString::from(TELUS_CLIENT_SECRET),
                jwt: Some(SecretString::from(TELUS_JWT)),
                redirect_uri: url::Url::parse("http://127.0.0.1:8765/callback")
                    .expect("loopback URL"),
                bulk_task_timeout: std::time::Duration::from_secs(120),
            },
            store_path: store_path.to_path_buf(),
            journal_days: 400,
            backup_warning: true,
            notify: None,
            retry: crate::reconcile::policy::Retry {
                quarantine_after: 3,
                backoff: std::time::Duration::ZERO,
            },
            http: None,
            schedule: Schedule {
                cron_is_default: true,
                cron: "0 */15 * * * *".into(),
                full_cron: "0 0 3 * * *".into(),
            },
            // Tests and the sandbox's passes ask for events where they want them.
            events: crate::config::Events::off(),
            safety: Safety {
                max_deactivations: 10,
                max_changed_percent: 100,
                ..Safety::default()
            },
            policy,
            warnings: Vec::new(),
        }
    }
}
