//! Whether the TELUS session can lapse, and how `status` says so: a JWT session renews
//! itself (a lapsed refresh token is replaced by a new grant), so only the JWT's own expiry
//! matters; an authorization-code session renews its refresh token at every refresh, so it
//! lapses only when no process refreshes it in time. No IO: the clock and the schedule are
//! inputs.

use crate::model::TokenPair;
use base64::Engine as _;
use secrecy::{ExposeSecret as _, SecretString};

/// An authorization-code session closer than this to its refresh token's end is at risk.
pub const LAPSE_WINDOW_S: i64 = 2 * 86_400;
/// A JWT credential closer than this to its own `exp` is at risk.
pub const JWT_WARN_S: i64 = 14 * 86_400;

/// What `status`, the log and the `okta_telus_sync_telus_session_at_risk` gauge say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// The session can lapse (or has): an admin must act, or a pass must run in time.
    pub at_risk: bool,
    /// The status line.
    pub line: String,
}

/// The `exp` claim of a JWT (seconds since the epoch), read without checking its signature
/// (RingCentral checks it); `Err` when the credential is not a readable JWT.
pub fn jwt_expiry(jwt: &SecretString) -> Result<Option<i64>, String> {
    let payload = jwt
        .expose_secret()
        .split('.')
        .nth(1)
        .ok_or("not a JWT (no payload part)")?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .map_err(|_| "its payload is not base64url")?;
    let claims: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| "its payload is not JSON")?;
    Ok(claims.get("exp").and_then(serde_json::Value::as_i64))
}

fn when(epoch: i64) -> String {
    chrono::DateTime::from_timestamp(epoch, 0)
        .map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| epoch.to_string())
}

/// The session as of `now`: with `jwt` configured, by the JWT's expiry; else by the stored
/// pair's refresh token against `next_pass` (when the next scheduled pass would refresh it).
pub fn assess(
    now: i64,
    jwt: Option<&SecretString>,
    stored: Option<&TokenPair>,
    next_pass: Option<i64>,
) -> Assessment {
    if let Some(jwt) = jwt {
        let renew = "TELUS credentials: JWT bearer grant (server-to-server). The session renews itself: passes refresh it, and a refresh token that lapsed is replaced by a new JWT grant, so it never needs signing in again.";
        return match jwt_expiry(jwt) {
            Ok(Some(exp)) if exp - now < JWT_WARN_S => Assessment {
                at_risk: true,
                line: format!(
                    "{renew}\n  WARNING: the JWT credential itself {} {} ({} days): create a new one in the RingCentral developer console and put it in telus.jwt.",
                    if exp <= now { "expired" } else { "expires" },
                    when(exp),
                    (exp - now).max(0) / 86_400
                ),
            },
            Ok(Some(exp)) => Assessment {
                at_risk: false,
                line: format!(
                    "{renew} The JWT credential expires {} ({} days left).",
                    when(exp),
                    (exp - now) / 86_400
                ),
            },
            Ok(None) => Assessment {
                at_risk: false,
                line: format!("{renew} The JWT credential has no expiry."),
            },
            Err(e) => Assessment {
                at_risk: false,
                line: format!("{renew} Its expiry cannot be read ({e})."),
            },
        };
    }
    let Some(pair) = stored else {
        return Assessment {
            at_risk: true,
            line: "TELUS credentials: none. Set telus.jwt, or run `okta-telus-sync auth telus`."
                .into(),
        };
    };
    let Some(exp) = pair.refresh_expires_at else {
        return Assessment {
            at_risk: true,
            line: "TELUS session (auth telus): no refresh token held; it ends with its access token. Run `okta-telus-sync auth telus` again.".into(),
        };
    };
    let left = exp - now;
    let base = format!(
        "TELUS session (auth telus): refresh token valid until {} ({} days left); it renews at every refresh, which every pass makes.",
        when(exp),
        left.max(0) / 86_400
    );
    if left <= 0 {
        return Assessment {
            at_risk: true,
            line: format!("{base}\n  EXPIRED: run `okta-telus-sync auth telus` again."),
        };
    }
    let before_next = next_pass.is_some_and(|n| n >= exp);
    if left < LAPSE_WINDOW_S || before_next {
        let next = match next_pass {
            Some(n) => format!("the next scheduled pass is {}", when(n)),
            None => "no pass is scheduled".into(),
        };
        return Assessment {
            at_risk: true,
            line: format!(
                "{base}\n  WARNING: it lapses {} unless a pass refreshes it first ({next}): start the daemon or run `sync`; if it lapses, run `auth telus` again.",
                when(exp)
            ),
        };
    }
    Assessment {
        at_risk: false,
        line: base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What RingCentral answers a JWT grant or a refresh: `refresh_token_expires_in` 603917
    /// (about 7 days), as real sandbox accounts show.
    const REAL_REFRESH_S: i64 = 603_917;

    fn pair(refresh_expires_at: Option<i64>) -> TokenPair {
        TokenPair {
            access_token: SecretString::from("a"),
            access_expires_at: 0,
            refresh_token: Some(SecretString::from("r")),
            refresh_expires_at,
        }
    }

    fn jwt(claims: serde_json::Value) -> SecretString {
        let enc = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
        SecretString::from(format!(
            "{}.{}.sig",
            enc(br#"{"alg":"RS256"}"#),
            enc(claims.to_string().as_bytes())
        ))
    }

    #[test]
    fn a_jwt_session_right_after_its_grant_is_healthy_and_never_asks_for_auth_telus() {
        let now = 1_800_000_000;
        let stored = pair(Some(now + REAL_REFRESH_S));
        for j in [
            jwt(serde_json::json!({})),
            jwt(serde_json::json!({"exp": now + 90 * 86_400})),
        ] {
            let a = assess(now, Some(&j), Some(&stored), Some(now + 900));
            assert!(!a.at_risk, "{}", a.line);
            assert!(!a.line.contains("WARNING"), "{}", a.line);
            assert!(a.line.contains("renews itself"), "{}", a.line);
            assert!(!a.line.contains("auth telus"), "{}", a.line);
        }
    }

    #[test]
    fn a_jwt_close_to_its_own_expiry_warns() {
        let now = 1_800_000_000;
        let j = jwt(serde_json::json!({"exp": now + 10 * 86_400}));
        let a = assess(now, Some(&j), None, None);
        assert!(a.at_risk && a.line.contains("WARNING"), "{}", a.line);
        assert!(!a.line.contains("auth telus` again"), "{}", a.line);
    }

    #[test]
    fn an_authorization_code_session_warns_only_when_it_can_lapse() {
        let now = 1_800_000_000;
        // Refreshed just now by a pass: nearly 7 days, a pass every 15 minutes.
        let fresh = pair(Some(now + REAL_REFRESH_S));
        assert!(!assess(now, None, Some(&fresh), Some(now + 900)).at_risk);
        // No process refreshed it for six days: under a day left.
        let stale = pair(Some(now + REAL_REFRESH_S - 6 * 86_400));
        let a = assess(now, None, Some(&stale), Some(now + 900));
        assert!(a.at_risk && a.line.contains("WARNING"), "{}", a.line);
        // Three days left, but the next scheduled pass comes after that.
        let three = pair(Some(now + 3 * 86_400));
        assert!(!assess(now, None, Some(&three), Some(now + 86_400)).at_risk);
        assert!(assess(now, None, Some(&three), Some(now + 4 * 86_400)).at_risk);
        let gone = pair(Some(now - 1));
        assert!(
            assess(now, None, Some(&gone), None)
                .line
                .contains("EXPIRED")
        );
    }
}
