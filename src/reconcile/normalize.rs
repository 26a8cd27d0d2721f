//! Value normalization: the one form a value takes before it is compared (trimmed text,
//! lowercased email, E.164 phone, ISO 3166-2 subdivision code, ISO 3166-1 alpha-2 country),
//! and the form it is written in where a field holds another (a TELUS country name). Pure.

use super::policy::Normalize;

/// A raw value brought to its normalized form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Norm {
    /// Absent, null or only whitespace.
    Empty,
    Value(String),
    /// Present but not understood (an unparseable phone, an unknown state): `trimmed` is the
    /// value as given, used only for comparison; `reason` is shown to the admin.
    Invalid {
        trimmed: String,
        reason: String,
    },
}

impl Norm {
    /// The form used to compare two values.
    pub fn key(&self) -> Option<&str> {
        match self {
            Norm::Empty => None,
            Norm::Value(v) => Some(v),
            Norm::Invalid { trimmed, .. } => Some(trimmed),
        }
    }
}

/// Normalizes with no region known: phone numbers without a country code are read as
/// Canadian (North American numbering).
pub fn normalize(kind: Normalize, raw: Option<&str>) -> Norm {
    normalize_in(kind, raw, None)
}

/// Normalizes; `region` (an ISO 3166-1 alpha-2 code such as "CA" or "GB", from the user's
/// country) is how a phone number without a country code is read.
pub fn normalize_in(kind: Normalize, raw: Option<&str>, region: Option<&str>) -> Norm {
    let trimmed = match raw.map(str::trim) {
        None | Some("") => return Norm::Empty,
        Some(t) => t,
    };
    if let Some(what) = trimmed.strip_prefix(crate::model::UNREADABLE) {
        let reason = match what.starts_with(['{', '[']) {
            true => format!("not text but {what}"),
            false => what.to_string(),
        };
        return Norm::Invalid {
            trimmed: trimmed.to_string(),
            reason,
        };
    }
    match kind {
        Normalize::None => Norm::Value(trimmed.to_string()),
        Normalize::Email => Norm::Value(trimmed.to_lowercase()),
        Normalize::E164 => match e164_in(trimmed, region) {
            Some(v) => Norm::Value(v),
            None => Norm::Invalid {
                trimmed: trimmed.to_string(),
                reason: "not a phone number that can be written in E.164 form".to_string(),
            },
        },
        Normalize::IsoSubdivision => match subdivision_code(trimmed) {
            Some(code) => Norm::Value(code.to_string()),
            None => Norm::Invalid {
                trimmed: trimmed.to_string(),
                reason: "not a known Canadian province/territory or US state".to_string(),
            },
        },
        Normalize::IsoCountry => match country_code(trimmed) {
            Some(code) => Norm::Value(code.to_string()),
            None => Norm::Invalid {
                trimmed: trimmed.to_string(),
                reason: "not a known country (ISO 3166-1 code or English name)".to_string(),
            },
        },
    }
}

/// The form a normalized value is written in to `to_telus` (true) or Okta: the compared
/// form, except a country, which TELUS holds as its name (RingCentral's spec:
/// `businessAddress.country` "Country name"; real records: "Canada").
pub fn written_form(kind: Normalize, value: &str, to_telus: bool) -> String {
    match (kind, to_telus) {
        (Normalize::IsoCountry, true) => country_name(value).unwrap_or(value).to_string(),
        _ => value.to_string(),
    }
}

/// The compared form of a value this tool wrote (the baseline a confirmed write leaves):
/// the written value itself, except a country name written to TELUS, which is compared by
/// its code. Cheap for every other kind: nothing is parsed again.
pub fn compared_form(kind: Normalize, written: Option<&str>) -> Option<String> {
    match (kind, written) {
        (Normalize::IsoCountry, Some(w)) => Some(
            country_code(w)
                .map(str::to_string)
                .unwrap_or_else(|| w.to_string()),
        ),
        (_, w) => w.map(str::to_string),
    }
}

/// Forms of a country that the ISO 3166-1 table of `celes` does not list but people write.
const COUNTRY_ALIASES: &[(&str, &str)] = &[
    ("uk", "GB"),
    ("britain", "GB"),
    ("turkiye", "TR"),
    ("cocoskeelingislands", "CC"),
    ("falklandislandsmalvinas", "FK"),
];

/// The name a country is written under in TELUS, where the short English name reads better
/// than ISO's formal one ("United States", as RingCentral's country dictionary names it,
/// rather than "The United States Of America").
const COUNTRY_NAMES: &[(&str, &str)] = &[
    ("US", "United States"),
    ("GB", "United Kingdom"),
    ("KR", "South Korea"),
    ("KP", "North Korea"),
    ("RU", "Russia"),
    ("IR", "Iran"),
    ("SY", "Syria"),
    ("LA", "Laos"),
    ("VN", "Vietnam"),
    ("BO", "Bolivia"),
    ("VE", "Venezuela"),
    ("TZ", "Tanzania"),
    ("MD", "Moldova"),
    ("TW", "Taiwan"),
];

/// Maps a country in any common form (ISO 3166-1 alpha-2 or alpha-3 code, English short or
/// formal name, common aliases such as "USA", "United States of America", "UK") to its
/// alpha-2 code, from the ISO table of the `celes` crate.
pub fn country_code(raw: &str) -> Option<&'static str> {
    let key: String = fold(raw)
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    // Numeric codes ("124") are a zip code typed in the wrong field more often than a country.
    if key.is_empty() || key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Some((_, code)) = COUNTRY_ALIASES.iter().find(|(a, _)| *a == key) {
        return Some(code);
    }
    key.parse::<celes::Country>().ok().map(|c| c.alpha2)
}

/// The English name TELUS is written for an alpha-2 code.
pub fn country_name(code: &str) -> Option<&'static str> {
    if let Some((_, name)) = COUNTRY_NAMES.iter().find(|(c, _)| *c == code) {
        return Some(name);
    }
    let c = celes::Country::from_alpha2(code).ok()?;
    Some(c.long_name.strip_prefix("The ").unwrap_or(c.long_name))
}

/// Formats a phone number in E.164, reading a number without a country code in Canada.
pub fn e164(raw: &str) -> Option<String> {
    e164_in(raw, None)
}

/// Formats a phone number in E.164 with libphonenumber's metadata (the `phonenumber` crate),
/// reading a number without a country code in `region` (default "CA"). A number that is not
/// valid for its region is refused; an extension (`x123`) is left out: E.164 has no place
/// for it ([`phone_extension`] tells it).
pub fn e164_in(raw: &str, region: Option<&str>) -> Option<String> {
    parse_phone(raw, region).map(|(number, _)| number)
}

/// The extension a phone number carries ("x123", "ext. 123"), which E.164 has no place for.
/// Cheap for the usual number: only one that has a letter, `#`, `;` or `,` is parsed.
pub fn phone_extension(raw: &str, region: Option<&str>) -> Option<String> {
    if !raw.contains(|c: char| c.is_ascii_alphabetic() || matches!(c, '#' | ';' | ',')) {
        return None;
    }
    parse_phone(raw, region).and_then(|(_, ext)| ext)
}

/// A phone number in E.164 with the extension it carried, if any; `None` when it is not a
/// complete, valid number for its region.
fn parse_phone(raw: &str, region: Option<&str>) -> Option<(String, Option<String>)> {
    let region = region
        .map(str::trim)
        .filter(|r| r.len() == 2)
        .and_then(|r| {
            r.to_ascii_uppercase()
                .parse::<phonenumber::country::Id>()
                .ok()
        })
        .unwrap_or(phonenumber::country::Id::CA);
    let number = phonenumber::parse(Some(region), raw.trim()).ok()?;
    if !phonenumber::is_valid(&number) {
        return None;
    }
    let ext = number.extension().map(|e| e.to_string());
    Some((
        number.format().mode(phonenumber::Mode::E164).to_string(),
        ext,
    ))
}

const SUBDIVISIONS: &[(&str, &[&str])] = &[
    // Canada
    ("AB", &["alberta", "alta"]),
    (
        "BC",
        &["british columbia", "colombie britannique", "b c", "bc"],
    ),
    ("MB", &["manitoba", "man"]),
    ("NB", &["new brunswick", "nouveau brunswick", "n b"]),
    (
        "NL",
        &[
            "newfoundland and labrador",
            "newfoundland & labrador",
            "newfoundland",
            "terre neuve et labrador",
            "nfld",
            "nf",
            "n l",
        ],
    ),
    ("NS", &["nova scotia", "nouvelle ecosse", "n s"]),
    (
        "NT",
        &[
            "northwest territories",
            "territoires du nord ouest",
            "nwt",
            "n w t",
        ],
    ),
    ("NU", &["nunavut"]),
    ("ON", &["ontario", "ont"]),
    (
        "PE",
        &[
            "prince edward island",
            "ile du prince edouard",
            "pei",
            "p e i",
        ],
    ),
    ("QC", &["quebec", "que", "pq", "p q"]),
    ("SK", &["saskatchewan", "sask"]),
    ("YT", &["yukon", "yukon territory", "yk"]),
    // United States
    ("AL", &["alabama", "ala"]),
    ("AK", &["alaska"]),
    ("AZ", &["arizona", "ariz"]),
    ("AR", &["arkansas", "ark"]),
    ("CA", &["california", "calif", "cal"]),
    ("CO", &["colorado", "colo"]),
    ("CT", &["connecticut", "conn"]),
    ("DE", &["delaware", "del"]),
    ("DC", &["district of columbia", "washington dc", "d c"]),
    ("FL", &["florida", "fla"]),
    ("GA", &["georgia"]),
    ("HI", &["hawaii"]),
    ("ID", &["idaho"]),
    ("IL", &["illinois", "ill"]),
    ("IN", &["indiana", "ind"]),
    ("IA", &["iowa"]),
    ("KS", &["kansas", "kans"]),
    ("KY", &["kentucky"]),
    ("LA", &["louisiana"]),
    ("ME", &["maine"]),
    ("MD", &["maryland"]),
    ("MA", &["massachusetts", "mass"]),
    ("MI", &["michigan", "mich"]),
    ("MN", &["minnesota", "minn"]),
    ("MS", &["mississippi", "miss"]),
    ("MO", &["missouri"]),
    ("MT", &["montana", "mont"]),
    ("NE", &["nebraska", "nebr"]),
    ("NV", &["nevada", "nev"]),
    ("NH", &["new hampshire", "n h"]),
    ("NJ", &["new jersey", "n j"]),
    ("NM", &["new mexico", "n m"]),
    ("NY", &["new york", "n y"]),
    ("NC", &["north carolina", "n c"]),
    ("ND", &["north dakota", "n d"]),
    ("OH", &["ohio"]),
    ("OK", &["oklahoma", "okla"]),
    ("OR", &["oregon", "ore"]),
    ("PA", &["pennsylvania", "penn"]),
    ("RI", &["rhode island", "r i"]),
    ("SC", &["south carolina", "s c"]),
    ("SD", &["south dakota", "s d"]),
    ("TN", &["tennessee", "tenn"]),
    ("TX", &["texas", "tex"]),
    ("UT", &["utah"]),
    ("VT", &["vermont"]),
    ("VA", &["virginia"]),
    ("WA", &["washington", "wash"]),
    ("WV", &["west virginia", "w va"]),
    ("WI", &["wisconsin", "wis"]),
    ("WY", &["wyoming", "wyo"]),
    ("PR", &["puerto rico"]),
    ("GU", &["guam"]),
    ("VI", &["us virgin islands", "virgin islands"]),
    ("AS", &["american samoa"]),
    ("MP", &["northern mariana islands"]),
];

/// Maps a Canadian or US subdivision, in any common form, to its ISO 3166-2 code (without
/// the country prefix): "British Columbia", "B.C.", "bc", "CA-BC" and "Colombie-Britannique"
/// all give "BC".
pub fn subdivision_code(raw: &str) -> Option<&'static str> {
    let mut key = fold(raw);
    for prefix in ["ca ", "us "] {
        if key.len() == 5
            && let Some(rest) = key.strip_prefix(prefix)
        {
            key = rest.to_string();
        }
    }
    if key.len() == 2 {
        let upper = key.to_ascii_uppercase();
        if let Some((code, _)) = SUBDIVISIONS.iter().find(|(c, _)| *c == upper) {
            return Some(code);
        }
    }
    SUBDIVISIONS
        .iter()
        .find(|(_, names)| names.contains(&key.as_str()))
        .map(|(code, _)| *code)
}

/// Lowercase, accents removed, punctuation and hyphens to single spaces.
fn fold(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut space = true;
    for c in raw.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'à' | 'á' | 'â' | 'ä' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' | 'í' => 'i',
            'ô' | 'ö' | 'ó' => 'o',
            'ù' | 'û' | 'ü' | 'ú' => 'u',
            'ç' => 'c',
            c => c,
        };
        if c.is_alphanumeric() || c == '&' {
            out.push(c);
            space = false;
        } else if !space {
            out.push(' ');
            space = true;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_in_north_american_forms_become_e164() {
        for raw in [
            "604-555-0142",
            "(604) 555-0142",
            "+1 604 555 0142",
            "1.604.555.0142",
            "6045550142",
        ] {
            assert_eq!(e164(raw).as_deref(), Some("+16045550142"), "{raw}");
        }
    }

    #[test]
    fn phones_with_an_extension_compare_by_the_number_and_name_the_extension() {
        for (raw, ext) in [
            ("(604) 555-0110 x123", "123"),
            ("(403) 555-0111 ext. 123", "123"),
            ("604-555-0110 ext 42", "42"),
            ("+1 604 555 0110 #7", "7"),
        ] {
            let number = e164(raw);
            assert!(
                number.as_deref().is_some_and(|n| n.starts_with("+1")),
                "{raw}: {number:?}"
            );
            assert_eq!(phone_extension(raw, None).as_deref(), Some(ext), "{raw}");
        }
        assert_eq!(e164("(604) 555-0110 x123").as_deref(), Some("+16045550110"));
        assert_eq!(phone_extension("(604) 555-0103", None), None);
        assert_eq!(phone_extension("+16045550103", None), None);
        // libphonenumber keeps a 555 exchange with its area code: a fictional but whole number.
        assert_eq!(e164("(604) 555-0103").as_deref(), Some("+16045550103"));
    }

    #[test]
    fn international_phone_is_kept() {
        assert_eq!(e164("+44 20 7946 0958").as_deref(), Some("+442079460958"));
    }

    #[test]
    fn national_number_is_read_in_the_users_country() {
        assert_eq!(
            e164_in("020 7946 0958", Some("GB")).as_deref(),
            Some("+442079460958")
        );
        assert_eq!(e164_in("020 7946 0958", Some("CA")), None);
        assert_eq!(
            e164_in("604 555 0142", Some("Canada")).as_deref(),
            Some("+16045550142")
        );
    }

    #[test]
    fn unparseable_phones_are_invalid() {
        for raw in [
            "555-0142",
            // Area code 555 does not exist; a number without one is not complete.
            "+1-555-123-4567",
            "555-0108",
            "+1 104 555 0142",
            "call me",
            "1+6045550142",
        ] {
            assert_eq!(e164(raw), None, "{raw}");
        }
    }

    #[test]
    fn subdivisions_in_common_forms_become_codes() {
        let cases = [
            ("British Columbia", "BC"),
            ("B.C.", "BC"),
            ("bc", "BC"),
            ("CA-BC", "BC"),
            ("Colombie-Britannique", "BC"),
            ("Québec", "QC"),
            ("Quebec", "QC"),
            ("Newfoundland and Labrador", "NL"),
            ("Nfld.", "NL"),
            ("Prince Edward Island", "PE"),
            ("California", "CA"),
            ("new york", "NY"),
            ("  Ontario ", "ON"),
        ];
        for (raw, code) in cases {
            assert_eq!(subdivision_code(raw), Some(code), "{raw}");
        }
        assert_eq!(subdivision_code("Narnia"), None);
        assert_eq!(subdivision_code("ZZ"), None);
    }

    #[test]
    fn countries_in_common_forms_become_alpha2() {
        let cases = [
            ("CA", "CA"),
            ("ca", "CA"),
            ("CAN", "CA"),
            ("Canada", "CA"),
            (" canada ", "CA"),
            ("US", "US"),
            ("USA", "US"),
            ("U.S.A.", "US"),
            ("United States", "US"),
            ("United States of America", "US"),
            ("GB", "GB"),
            ("UK", "GB"),
            ("United Kingdom", "GB"),
            ("France", "FR"),
            ("DEU", "DE"),
        ];
        for (raw, code) in cases {
            assert_eq!(country_code(raw), Some(code), "{raw}");
        }
        for raw in ["Narnia", "124", "", "ZZ"] {
            assert_eq!(country_code(raw), None, "{raw}");
        }
    }

    #[test]
    fn country_compares_by_code_and_is_written_to_telus_as_a_name() {
        for raw in ["Canada", "CA", "CAN"] {
            assert_eq!(
                normalize(Normalize::IsoCountry, Some(raw)),
                Norm::Value("CA".into())
            );
        }
        assert_eq!(written_form(Normalize::IsoCountry, "CA", true), "Canada");
        assert_eq!(
            written_form(Normalize::IsoCountry, "US", true),
            "United States"
        );
        assert_eq!(written_form(Normalize::IsoCountry, "FR", true), "France");
        assert_eq!(written_form(Normalize::IsoCountry, "CA", false), "CA");
        assert_eq!(written_form(Normalize::None, "CA", true), "CA");
        // The written name reads back as the code it came from, for every country.
        for code in [
            "CA", "US", "GB", "KR", "NL", "PH", "AE", "RU", "VN", "BO", "DE",
        ] {
            let name = written_form(Normalize::IsoCountry, code, true);
            assert_eq!(country_code(&name), Some(code), "{name}");
            assert_eq!(
                compared_form(Normalize::IsoCountry, Some(&name)).as_deref(),
                Some(code)
            );
        }
        // Every country of the ISO table: its written name reads back as its code.
        let wrong: Vec<String> = celes::Country::get_countries()
            .iter()
            .filter(|c| country_name(c.alpha2).and_then(country_code) != Some(c.alpha2))
            .map(|c| format!("{} {:?}", c.alpha2, country_name(c.alpha2)))
            .collect();
        assert!(wrong.is_empty(), "{wrong:?}");
        assert!(matches!(
            normalize(Normalize::IsoCountry, Some("Narnia")),
            Norm::Invalid { .. }
        ));
    }

    #[test]
    fn email_is_lowercased_and_trimmed() {
        assert_eq!(
            normalize(Normalize::Email, Some("  Ana.Silva@Example.CA ")),
            Norm::Value("ana.silva@example.ca".into())
        );
    }

    #[test]
    fn blank_is_empty() {
        assert_eq!(normalize(Normalize::None, Some("   ")), Norm::Empty);
        assert_eq!(normalize(Normalize::E164, None), Norm::Empty);
    }

    #[test]
    fn invalid_keeps_the_trimmed_value_for_comparison() {
        let n = normalize(Normalize::IsoSubdivision, Some(" Narnia "));
        assert_eq!(n.key(), Some("Narnia"));
        assert!(matches!(n, Norm::Invalid { .. }));
    }
}
