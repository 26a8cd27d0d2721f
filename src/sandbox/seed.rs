//! The sandbox's demo directory: a dozen Canadian users on each side, with the differences a
//! real pair of directories has (stale fields, reformatted values, a duplicate, strays).

use super::okta::FakeOktaUser;
use super::telus::{FakeExtension, FakeNumber};
use serde_json::{Map, Value, json};

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn okta(id: &str, status: &str, profile: Value) -> FakeOktaUser {
    FakeOktaUser {
        id: id.into(),
        status: status.into(),
        last_updated: "2026-11-01T09:00:00.000Z".into(),
        provider: "OKTA",
        profile: obj(profile),
    }
}

#[allow(clippy::too_many_arguments)]
fn profile(
    first: &str,
    last: &str,
    email: &str,
    mobile: &str,
    street: &str,
    city: &str,
    state: &str,
    zip: &str,
    dept: &str,
) -> Value {
    json!({
        "login": email.to_lowercase(),
        "firstName": first,
        "lastName": last,
        "email": email,
        "mobilePhone": mobile,
        "streetAddress": street,
        "city": city,
        "state": state,
        "zipCode": zip,
        "countryCode": "CA",
        "department": dept,
        "title": "Staff",
    })
}

fn ext(id: i64, number: &str, status: &str, contact: Value) -> FakeExtension {
    FakeExtension {
        id,
        directory_ref: None,
        extension_number: number.into(),
        status: status.into(),
        kind: "User".into(),
        contact: obj(contact),
    }
}

#[allow(clippy::too_many_arguments)]
fn contact(
    first: &str,
    last: &str,
    email: &str,
    mobile: &str,
    street: &str,
    city: &str,
    state: &str,
    zip: &str,
    dept: &str,
) -> Value {
    json!({
        "firstName": first,
        "lastName": last,
        "email": email,
        "emailAsLoginName": true,
        "mobilePhone": mobile,
        "department": dept,
        // Real records hold the country's name: "Canada" in RingCentral's own test data from
        // a real sandbox account (ringcentral-js-widgets, integration-test/mock/data/
        // extensionInfo.json); the spec calls the field "Country name".
        "businessAddress": {"street": street, "city": city, "state": state, "zip": zip, "country": "Canada"},
    })
}

/// The Okta side of the demo directory.
pub fn okta_users() -> Vec<FakeOktaUser> {
    vec![
        // In agreement except the department, changed in Okta.
        okta(
            "00u1ana",
            "ACTIVE",
            profile(
                "Ana",
                "Silva",
                "ana.silva@northwind.ca",
                "+1 604 555 0101",
                "1055 W Georgia St",
                "Vancouver",
                "BC",
                "V6E 3P3",
                "Marketing",
            ),
        ),
        // Province spelled out in Okta, coded in TELUS: the same value, nothing to write.
        // PROVISIONED (activation email sent, not yet signed in): a live account.
        okta(
            "00u2ben",
            "PROVISIONED",
            profile(
                "Benoît",
                "Tremblay",
                "ben.tremblay@northwind.ca",
                "514-555-0102",
                "1250 Boul René-Lévesque O",
                "Montréal",
                "Québec",
                "H3B 4W8",
                "Finance",
            ),
        ),
        // Phone formatted differently on each side: the same number. 555-0100 to 555-0199
        // are NANP numbers reserved for fiction; with an area code libphonenumber takes them
        // as whole numbers, as a real org's test users have them.
        // RECOVERY (password reset under way): a live account.
        okta(
            "00u3chl",
            "RECOVERY",
            profile(
                "Chloé",
                "Wong",
                "chloe.wong@northwind.ca",
                "(604) 555-0103",
                "4720 Kingsway",
                "Burnaby",
                "British Columbia",
                "V5H 4N2",
                "Engineering",
            ),
        ),
        // Email cased differently; city moved in Okta.
        // LOCKED_OUT (too many sign-in attempts): a live account.
        okta(
            "00u4dav",
            "LOCKED_OUT",
            profile(
                "David",
                "Martin",
                "David.Martin@Northwind.ca",
                "+14165550104",
                "100 King St W",
                "Toronto",
                "ON",
                "M5X 1A9",
                "Sales",
            ),
        ),
        // Mobile missing in TELUS; TELUS holds a direct number Okta does not know yet.
        okta(
            "00u5emm",
            "ACTIVE",
            profile(
                "Emma",
                "Roy",
                "emma.roy@northwind.ca",
                "403.555.0105",
                "855 2 St SW",
                "Calgary",
                "Alberta",
                "T2P 4J8",
                "Operations",
            ),
        ),
        // No direct number in TELUS: primaryPhone becomes "#105".
        okta(
            "00u6far",
            "ACTIVE",
            profile(
                "Farid",
                "Haddad",
                "farid.haddad@northwind.ca",
                // A number as people write it, with an extension (TELUS's field cannot
                // carry one: the number alone is compared and written).
                "(902) 555-0106 x106",
                "1801 Hollis St",
                "Halifax",
                "Nova Scotia",
                "B3J 3N4",
                "Support",
            ),
        ),
        // Two TELUS extensions carry this email: a conflict, nothing written.
        okta(
            "00u7gra",
            "ACTIVE",
            profile(
                "Grace",
                "Lee",
                "grace.lee@northwind.ca",
                "+1 204 555 0107",
                "201 Portage Ave",
                "Winnipeg",
                "MB",
                "R3B 3K6",
                "Legal",
            ),
        ),
        // A mobile number with no area code, not a complete number: a known data problem
        // (reported and failed once, then listed, not failed, while unchanged).
        okta(
            "00u8hug",
            "ACTIVE",
            profile(
                "Hugo",
                "Gagnon",
                "hugo.gagnon@northwind.ca",
                "555-0108",
                "900 Boul Champlain",
                "Québec",
                "QC",
                "G1K 4J6",
                "Finance",
            ),
        ),
        // In Okta only.
        // PASSWORD_EXPIRED: a live account, created in TELUS like an ACTIVE one.
        okta(
            "00u9isa",
            "PASSWORD_EXPIRED",
            profile(
                "Isabelle",
                "Côté",
                "isabelle.cote@northwind.ca",
                "+1 613 555 0109",
                "150 Elgin St",
                "Ottawa",
                "Ontario",
                "K2P 1L4",
                "Engineering",
            ),
        ),
        // Suspended in Okta.
        okta(
            "00uAjac",
            "SUSPENDED",
            profile(
                "Jack",
                "Nguyen",
                "jack.nguyen@northwind.ca",
                "+1 306 555 0110",
                "2103 11th Ave",
                "Regina",
                "Saskatchewan",
                "S4P 3Z8",
                "Sales",
            ),
        ),
        // Last name corrected in Okta; street edited by hand in TELUS.
        okta(
            "00uBkar",
            "ACTIVE",
            profile(
                "Karen",
                "O'Brien",
                "karen.obrien@northwind.ca",
                "+1 709 555 0111",
                "5 Springdale St",
                "St. John's",
                "Newfoundland and Labrador",
                "A1C 5V4",
                "Support",
            ),
        ),
        // In agreement.
        okta(
            "00uCliam",
            "ACTIVE",
            profile(
                "Liam",
                "Fraser",
                "liam.fraser@northwind.ca",
                "+1 867 555 0112",
                "4910 50 Ave",
                "Yellowknife",
                "Northwest Territories",
                "X1A 3S5",
                "Operations",
            ),
        ),
    ]
}

/// The TELUS side of the demo directory.
pub fn telus_extensions() -> Vec<FakeExtension> {
    vec![
        ext(
            62001,
            "101",
            "Enabled",
            contact(
                "Ana",
                "Silva",
                "ana.silva@northwind.ca",
                "+16045550101",
                "1055 W Georgia St",
                "Vancouver",
                "BC",
                "V6E 3P3",
                "Sales",
            ),
        ),
        ext(
            62002,
            "102",
            "Enabled",
            contact(
                "Benoît",
                "Tremblay",
                "ben.tremblay@northwind.ca",
                "+15145550102",
                "1250 Boul René-Lévesque O",
                "Montréal",
                "QC",
                "H3B 4W8",
                "Finance",
            ),
        ),
        ext(
            62003,
            "103",
            "Enabled",
            contact(
                "Chloé",
                "Wong",
                "chloe.wong@northwind.ca",
                "+16045550103",
                "4720 Kingsway",
                "Burnaby",
                "BC",
                "V5H 4N2",
                "Engineering",
            ),
        ),
        ext(
            62004,
            "104",
            "Enabled",
            contact(
                "David",
                "Martin",
                "david.martin@northwind.ca",
                "+14165550104",
                "100 King St W",
                "Mississauga",
                "ON",
                "M5X 1A9",
                "Sales",
            ),
        ),
        ext(
            62005,
            "105",
            "Enabled",
            contact(
                "Emma",
                "Roy",
                "emma.roy@northwind.ca",
                "",
                "855 2 St SW",
                "Calgary",
                "AB",
                "T2P 4J8",
                "Operations",
            ),
        ),
        ext(
            62006,
            "106",
            "Enabled",
            contact(
                "Farid",
                "Haddad",
                "farid.haddad@northwind.ca",
                "+19025550106",
                "1801 Hollis St",
                "Halifax",
                "NS",
                "B3J 3N4",
                "Support",
            ),
        ),
        ext(
            62007,
            "107",
            "Enabled",
            contact(
                "Grace",
                "Lee",
                "grace.lee@northwind.ca",
                "+12045550107",
                "201 Portage Ave",
                "Winnipeg",
                "MB",
                "R3B 3K6",
                "Legal",
            ),
        ),
        ext(
            62017,
            "117",
            "Enabled",
            contact(
                "Grace",
                "Lee",
                "Grace.Lee@northwind.ca",
                "",
                "201 Portage Ave",
                "Winnipeg",
                "MB",
                "R3B 3K6",
                "Legal",
            ),
        ),
        ext(
            62008,
            "108",
            "Enabled",
            contact(
                "Hugo",
                "Gagnon",
                "hugo.gagnon@northwind.ca",
                "+14185550108",
                "900 Boul Champlain",
                "Québec",
                "QC",
                "G1K 4J6",
                "Finance",
            ),
        ),
        ext(
            62010,
            "110",
            "Enabled",
            contact(
                "Jack",
                "Nguyen",
                "jack.nguyen@northwind.ca",
                "+13065550110",
                "2103 11th Ave",
                "Regina",
                "SK",
                "S4P 3Z8",
                "Sales",
            ),
        ),
        ext(
            62011,
            "111",
            "Enabled",
            contact(
                "Karen",
                "OBrien",
                "karen.obrien@northwind.ca",
                "+17095550111",
                "5 Springdale Street",
                "St. John's",
                "NL",
                "A1C 5V4",
                "Support",
            ),
        ),
        ext(
            62012,
            "112",
            "Enabled",
            contact(
                "Liam",
                "Fraser",
                "liam.fraser@northwind.ca",
                "+18675550112",
                "4910 50 Ave",
                "Yellowknife",
                "NT",
                "X1A 3S5",
                "Operations",
            ),
        ),
        // A TELUS user no one in Okta matches.
        ext(
            62020,
            "120",
            "Enabled",
            contact(
                "Reception",
                "Desk",
                "reception@northwind.ca",
                "",
                "1055 W Georgia St",
                "Vancouver",
                "BC",
                "V6E 3P3",
                "Facilities",
            ),
        ),
    ]
}

/// The account's direct numbers.
pub fn telus_numbers() -> Vec<FakeNumber> {
    let n = |id: i64, number: &str, primary: bool, ext: Option<i64>| FakeNumber {
        id,
        phone_number: number.into(),
        usage_type: "DirectNumber".into(),
        primary,
        extension_id: ext,
    };
    vec![
        n(9001, "+16045550201", true, Some(62001)),
        n(9002, "+15145550202", true, Some(62002)),
        n(9003, "+16045550203", true, Some(62003)),
        n(9004, "+14165550204", true, Some(62004)),
        // Emma has two: the primary one wins even though it is not the lowest.
        n(9005, "+14035550299", true, Some(62005)),
        n(9015, "+14035550205", false, Some(62005)),
        n(9008, "+14185550208", true, Some(62008)),
        // Karen's has no primary flag: the lowest one is hers.
        n(9011, "+17095550211", false, Some(62011)),
        n(9012, "+18675550212", true, Some(62012)),
        // Unassigned company number.
        n(9099, "+16045550299", false, None),
    ]
}

/// Cost centers: an Okta custom attribute and a TELUS custom user field ("Cost Center", id
/// `cf1`), mapped by the sandbox's extra row. Okta → TELUS: (okta id, value).
pub const OKTA_COST_CENTERS: &[(&str, &str)] = &[
    ("00u1ana", "4410"),
    ("00u2ben", "5520"),
    ("00u4dav", "6630"),
];
/// TELUS values already set: (extension id, value). Ben's agrees; David's is stale.
pub const TELUS_COST_CENTERS: &[(i64, &str)] = &[(62002, "5520"), (62004, "6000")];

/// Okta profiles already carrying the primaryPhone TELUS would give them, so the demo shows
/// writes back only where something really changed.
pub fn with_known_primary_phones(mut users: Vec<FakeOktaUser>) -> Vec<FakeOktaUser> {
    for u in &mut users {
        let phone = match u.id.as_str() {
            "00u1ana" => "+16045550201#101",
            "00u2ben" => "+15145550202#102",
            "00u3chl" => "+16045550203#103",
            "00u4dav" => "+14165550204#104",
            "00uBkar" => "+17095550211#111",
            "00uCliam" => "+18675550212#112",
            _ => continue,
        };
        u.profile.insert("primaryPhone".into(), json!(phone));
    }
    for u in &mut users {
        if let Some((_, cc)) = OKTA_COST_CENTERS.iter().find(|(id, _)| *id == u.id) {
            u.profile.insert("costCenter".into(), json!(cc));
        }
    }
    users
}
