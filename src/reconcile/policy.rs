//! The mastering table as typed rules: which system supplies each attribute, how values are
//! normalized, and the feature and safety switches. Pure data, built by `config`, read by `plan`.

use crate::model::System;

/// How values of an attribute are brought to one form before comparing or writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Normalize {
    /// Trim only.
    None,
    /// Trim and compare case-insensitively; written lowercased.
    Email,
    /// Phone numbers to E.164 (North American numbering by default).
    E164,
    /// Canadian and US subdivision names to their ISO 3166-2 code ("British Columbia" → "BC").
    IsoSubdivision,
    /// Countries compared by ISO 3166-1 alpha-2 code: "CA", "CAN" and "Canada" are equal.
    /// Written to TELUS as the country name (the spec's "Country name", the form real
    /// records hold), to Okta as the alpha-2 code (`countryCode`).
    IsoCountry,
}

impl Normalize {
    pub fn parse(s: &str) -> Option<Normalize> {
        match s {
            "none" => Some(Normalize::None),
            "email" => Some(Normalize::Email),
            "e164" => Some(Normalize::E164),
            "iso-subdivision" => Some(Normalize::IsoSubdivision),
            "iso-country" => Some(Normalize::IsoCountry),
            _ => None,
        }
    }
}

/// One piece of a TELUS template such as `{directNumber}#{extensionNumber}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Lit(String),
    Field(String),
}

/// Where an attribute lives on the TELUS side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TelusSide {
    /// A field path, e.g. `contact.firstName`; `writable` is false for read-only fields.
    Field { path: String, writable: bool },
    /// A template of fields: a source only, never a target.
    Template(Vec<Piece>),
}

impl TelusSide {
    pub fn writable(&self) -> bool {
        matches!(self, TelusSide::Field { writable: true, .. })
    }

    /// Every TELUS field the side reads.
    pub fn fields(&self) -> Vec<&str> {
        match self {
            TelusSide::Field { path, .. } => vec![path.as_str()],
            TelusSide::Template(pieces) => pieces
                .iter()
                .filter_map(|p| match p {
                    Piece::Field(f) => Some(f.as_str()),
                    Piece::Lit(_) => None,
                })
                .collect(),
        }
    }

    /// The target field path, when the side can be written.
    pub fn path(&self) -> Option<&str> {
        match self {
            TelusSide::Field { path, .. } => Some(path),
            TelusSide::Template(_) => None,
        }
    }
}

/// How a `latest` row settles both sides changing to different values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    Prefer(System),
    Skip,
}

/// Who supplies the value of an attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Master {
    /// The first listed system that holds the user supplies the value.
    Priority(Vec<System>),
    /// The side that changed since the baseline wins.
    Latest { on_conflict: OnConflict },
}

/// One row of the mastering table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrRule {
    /// The Okta profile attribute, and the name used everywhere (plan, journal, history).
    pub okta_attr: String,
    pub telus: TelusSide,
    pub master: Master,
    pub normalize: Normalize,
    /// `apply = "create"` (Okta's `DONT_PUSH`: "set on create, never updated"): written when
    /// the TELUS user is created, never on updates. Only for rows Okta masters.
    pub create_only: bool,
}

/// Okta profile attributes that can never be cleared.
pub const OKTA_REQUIRED: &[&str] = &["login", "email", "firstName", "lastName"];
/// TELUS fields that can never be cleared.
pub const TELUS_REQUIRED: &[&str] = &["contact.firstName", "contact.email"];

/// The `[features]` switches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    pub create_users: bool,
    pub update_users: bool,
    pub deactivate_users: bool,
    pub write_back: bool,
}

impl Default for Features {
    fn default() -> Self {
        Features {
            create_users: true,
            update_users: true,
            deactivate_users: true,
            write_back: true,
        }
    }
}

/// The `[safety]` limits: a pass beyond them is held before any write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Safety {
    pub max_deactivations: u32,
    pub max_changed_percent: u32,
    /// TELUS users one pass may create, the first pass included (an onboarding pass over
    /// it needs `--approve`): a listing that lost users must not be answered by creating
    /// them again.
    pub max_creates: u32,
    /// Linked TELUS users that may vanish from the listing before the pass is held: one
    /// user deleted in the portal is reported, a listing that lost many holds everything.
    pub max_vanished: u32,
    /// Okta users one pass may create from the import queue when the admin did not name
    /// them one by one (`[import] auto_confirm_new`, `import confirm --all-new`).
    pub max_imports: u32,
    /// `reviewed_only`: passes only plan; only `sync --plan FILE` (a reviewed plan) writes.
    pub reviewed_only: bool,
}

impl Default for Safety {
    fn default() -> Self {
        Safety {
            max_deactivations: 10,
            max_changed_percent: 20,
            max_creates: 25,
            max_vanished: 5,
            max_imports: 25,
            reviewed_only: false,
        }
    }
}

/// How users whose writes fail are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Consecutive failed passes after which a user is quarantined.
    pub quarantine_after: u32,
    /// Wait before the first retry; doubled after each further failure.
    pub backoff: std::time::Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            quarantine_after: 5,
            backoff: std::time::Duration::from_secs(300),
        }
    }
}

/// Everything the planner needs to know about the admin's intent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    pub rules: Vec<AttrRule>,
    pub features: Features,
    pub import: ImportPolicy,
}

/// What TELUS users with no Okta match are matched on (`[import] match`): the Okta user's
/// email (the default) or its login, each compared case-insensitively (Okta's own import
/// matching is case-sensitive; this tool's is not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatchOn {
    #[default]
    Email,
    Login,
}

/// The `[import]` section: how TELUS users with no Okta match become Okta users.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ImportPolicy {
    /// Candidates proposed `new` are created on every whole pass (within
    /// `safety.max_imports`), without `import confirm`.
    pub auto_confirm_new: bool,
    /// Create them activated (`PROVISIONED`, and Okta emails an activation link) instead of
    /// `STAGED`.
    pub activate: bool,
    pub match_on: MatchOn,
    /// Under an app scope, assign each imported user to that app (which makes Okta push it
    /// too when the app provisions).
    pub assign_to_app: bool,
}

impl Policy {
    /// The built-in mastering table (DESIGN.md, [`DEFAULT_TABLE`]) with every feature on:
    /// what a config without `[attributes.*]` rows means.
    pub fn builtin() -> Policy {
        let rules = DEFAULT_TABLE
            .iter()
            .filter_map(|(attr, telus, master, normalize)| {
                Some(AttrRule {
                    okta_attr: attr.to_string(),
                    telus: parse_telus_side(telus).ok()?,
                    master: Master::Priority(vec![System::parse(master)?]),
                    normalize: Normalize::parse(normalize)?,
                    create_only: false,
                })
            })
            .collect();
        Policy {
            rules,
            features: Features::default(),
            import: ImportPolicy::default(),
        }
    }

    pub fn rule(&self, okta_attr: &str) -> Option<&AttrRule> {
        self.rules.iter().find(|r| r.okta_attr == okta_attr)
    }

    /// Whether any row reads or writes a TELUS custom user field.
    pub fn names_custom_fields(&self) -> bool {
        self.rules.iter().any(|r| {
            match &r.telus {
            TelusSide::Field { path, .. } => path.starts_with(crate::model::TELUS_CUSTOM_PREFIX),
            TelusSide::Template(p) => p.iter().any(|x| {
                matches!(x, Piece::Field(f) if f.starts_with(crate::model::TELUS_CUSTOM_PREFIX))
            }),
        }
        })
    }

    /// Every field name a pass must be able to hold for this table: the mapped Okta attributes
    /// and TELUS fields, and the names matching and lifecycle read.
    pub fn field_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = vec![
            "email",
            "login",
            crate::model::TELUS_EMAIL,
            crate::model::TELUS_EXTENSION_NUMBER,
            crate::model::TELUS_DIRECT_NUMBER,
        ];
        names.extend(OKTA_REQUIRED.iter().chain(TELUS_REQUIRED));
        for r in &self.rules {
            names.push(&r.okta_attr);
            match &r.telus {
                TelusSide::Field { path, .. } => names.push(path),
                TelusSide::Template(pieces) => {
                    names.extend(pieces.iter().filter_map(|p| match p {
                        Piece::Field(f) => Some(f.as_str()),
                        Piece::Lit(_) => None,
                    }))
                }
            }
        }
        names.sort_unstable();
        names.dedup();
        names
    }

    /// Whether the planner may write this attribute to this system at all.
    pub fn can_write(&self, rule: &AttrRule, system: System) -> bool {
        match system {
            System::Okta => self.features.write_back,
            System::Telus => self.features.update_users && rule.telus.writable(),
        }
    }
}

/// The default mastering table from DESIGN.md, as `(okta attr, telus side, master, normalize)`.
pub const DEFAULT_TABLE: &[(&str, &str, &str, &str)] = &[
    ("firstName", "contact.firstName", "okta", "none"),
    ("lastName", "contact.lastName", "okta", "none"),
    ("email", "contact.email", "okta", "email"),
    ("mobilePhone", "contact.mobilePhone", "okta", "e164"),
    (
        "streetAddress",
        "contact.businessAddress.street",
        "okta",
        "none",
    ),
    ("city", "contact.businessAddress.city", "okta", "none"),
    (
        "state",
        "contact.businessAddress.state",
        "okta",
        "iso-subdivision",
    ),
    ("zipCode", "contact.businessAddress.zip", "okta", "none"),
    (
        "countryCode",
        "contact.businessAddress.country",
        "okta",
        "iso-country",
    ),
    ("department", "contact.department", "okta", "none"),
    (
        "primaryPhone",
        "{directNumber}#{extensionNumber}",
        "telus",
        "none",
    ),
];

/// Parses a TELUS side: a template when it contains `{`, else a field path.
pub fn parse_telus_side(s: &str) -> Result<TelusSide, String> {
    if !s.contains('{') && !s.contains('}') {
        return match crate::model::telus_field_writable(s) {
            Some(writable) => Ok(TelusSide::Field {
                path: s.to_string(),
                writable,
            }),
            None => Err(format!("unknown TELUS field `{s}`")),
        };
    }
    let mut pieces = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        match rest.find('{') {
            Some(0) => {
                let end = rest
                    .find('}')
                    .ok_or_else(|| format!("unclosed `{{` in template `{s}`"))?;
                let name = &rest[1..end];
                if name.contains('{') {
                    return Err(format!("nested `{{` in template `{s}`"));
                }
                if crate::model::telus_field_writable(name).is_none() {
                    return Err(format!("unknown TELUS field `{name}` in template `{s}`"));
                }
                pieces.push(Piece::Field(name.to_string()));
                rest = &rest[end + 1..];
            }
            Some(i) => {
                let lit = &rest[..i];
                if lit.contains('}') {
                    return Err(format!("stray `}}` in template `{s}`"));
                }
                pieces.push(Piece::Lit(lit.to_string()));
                rest = &rest[i..];
            }
            None => {
                if rest.contains('}') {
                    return Err(format!("stray `}}` in template `{s}`"));
                }
                pieces.push(Piece::Lit(rest.to_string()));
                rest = "";
            }
        }
    }
    Ok(TelusSide::Template(pieces))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_fields_and_literals() {
        let side = parse_telus_side("{directNumber}#{extensionNumber}").unwrap();
        assert_eq!(
            side,
            TelusSide::Template(vec![
                Piece::Field("directNumber".into()),
                Piece::Lit("#".into()),
                Piece::Field("extensionNumber".into()),
            ])
        );
        assert!(!side.writable());
    }

    #[test]
    fn template_with_unknown_field_is_rejected() {
        let err = parse_telus_side("{directNumbr}#{extensionNumber}").unwrap_err();
        assert!(err.contains("directNumbr"), "{err}");
    }

    #[test]
    fn unclosed_template_is_rejected() {
        assert!(parse_telus_side("{directNumber#").is_err());
        assert!(parse_telus_side("directNumber}").is_err());
    }

    #[test]
    fn read_only_field_is_not_writable() {
        let side = parse_telus_side("extensionNumber").unwrap();
        assert!(!side.writable());
        assert!(parse_telus_side("contact.city").is_err());
    }
}
