//! Large generated directories for the scale benchmark: N users on each side, in agreement
//! except for a given share whose department differs (one TELUS write each), with a direct
//! number for every other user.

use super::okta::FakeOktaUser;
use super::telus::{FakeExtension, FakeNumber};
use serde_json::{Value, json};

fn obj(v: Value) -> serde_json::Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// `changed_per_mille` users in a thousand have a department to push to TELUS.
pub fn directory(
    n: usize,
    changed_per_mille: usize,
) -> (Vec<FakeOktaUser>, Vec<FakeExtension>, Vec<FakeNumber>) {
    let mut okta = Vec::with_capacity(n);
    let mut exts = Vec::with_capacity(n);
    let mut nums = Vec::with_capacity(n / 2 + 1);
    for i in 0..n {
        let email = format!("user{i:06}@northwind.ca");
        let ext_no = format!("{}", 10_000 + i);
        let direct = (i % 2 == 0).then(|| format!("+1604{:07}", 2_000_000 + i));
        let changed = i % 1000 < changed_per_mille;
        let primary = format!("{}#{ext_no}", direct.clone().unwrap_or_default());
        okta.push(FakeOktaUser {
            id: format!("00u{i:010}"),
            status: "ACTIVE".into(),
            last_updated: "2026-11-01T09:00:00.000Z".into(),
            provider: "OKTA",
            profile: obj(json!({
                "login": email, "email": email, "firstName": "User", "lastName": format!("Number{i}"),
                "mobilePhone": format!("+1604{:07}", 5_000_000 + i),
                "streetAddress": "1055 W Georgia St", "city": "Vancouver", "state": "BC",
                "zipCode": "V6E 3P3", "countryCode": "CA",
                "department": if changed { "Marketing" } else { "Support" },
                "primaryPhone": primary,
            })),
        });
        exts.push(FakeExtension {
            id: 1_000_000 + i as i64,
            directory_ref: None,
            extension_number: ext_no,
            status: "Enabled".into(),
            kind: "User".into(),
            contact: obj(json!({
                "firstName": "User", "lastName": format!("Number{i}"), "email": email,
                "mobilePhone": format!("+1604{:07}", 5_000_000 + i), "department": "Support",
                // Real records hold the country's name (RingCentral's extensionInfo.json).
                "businessAddress": {"street": "1055 W Georgia St", "city": "Vancouver", "state": "BC", "zip": "V6E 3P3", "country": "Canada"},
            })),
        });
        if let Some(d) = direct {
            nums.push(FakeNumber {
                id: 5_000_000 + i as i64,
                phone_number: d,
                usage_type: "DirectNumber".into(),
                primary: true,
                extension_id: Some(1_000_000 + i as i64),
            });
        }
    }
    (okta, exts, nums)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_changed_share_is_as_asked() {
        let (okta, _, nums) = super::directory(10_000, 50);
        let changed = okta
            .iter()
            .filter(|u| u.profile["department"] == "Marketing")
            .count();
        assert_eq!(changed, 500);
        assert_eq!(nums.len(), 5_000);
    }
}
