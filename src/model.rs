//! Our own user, attribute and rule types, shared by every layer. Pure data: no IO, no serde wire names.

use std::collections::BTreeMap;
use std::fmt;

/// Which directory a value lives in or a write goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum System {
    Okta,
    Telus,
}

impl System {
    pub fn as_str(self) -> &'static str {
        match self {
            System::Okta => "okta",
            System::Telus => "telus",
        }
    }

    pub fn parse(s: &str) -> Option<System> {
        match s {
            "okta" => Some(System::Okta),
            "telus" => Some(System::Telus),
            _ => None,
        }
    }

    pub fn other(self) -> System {
        match self {
            System::Okta => System::Telus,
            System::Telus => System::Okta,
        }
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Okta user id (`00u...`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OktaId(pub String);

/// RingCentral extension id (an int64 on the wire, kept as its decimal text).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExtId(pub String);

impl fmt::Display for OktaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ExtId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Okta lifecycle status, as far as syncing cares.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OktaStatus {
    Staged,
    Provisioned,
    Active,
    Recovery,
    PasswordExpired,
    LockedOut,
    Suspended,
    Deprovisioned,
    Other(String),
}

impl OktaStatus {
    pub fn parse(s: &str) -> OktaStatus {
        match s {
            "STAGED" => OktaStatus::Staged,
            "PROVISIONED" => OktaStatus::Provisioned,
            "ACTIVE" => OktaStatus::Active,
            "RECOVERY" => OktaStatus::Recovery,
            "PASSWORD_EXPIRED" => OktaStatus::PasswordExpired,
            "LOCKED_OUT" => OktaStatus::LockedOut,
            "SUSPENDED" => OktaStatus::Suspended,
            "DEPROVISIONED" => OktaStatus::Deprovisioned,
            other => OktaStatus::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            OktaStatus::Staged => "STAGED",
            OktaStatus::Provisioned => "PROVISIONED",
            OktaStatus::Active => "ACTIVE",
            OktaStatus::Recovery => "RECOVERY",
            OktaStatus::PasswordExpired => "PASSWORD_EXPIRED",
            OktaStatus::LockedOut => "LOCKED_OUT",
            OktaStatus::Suspended => "SUSPENDED",
            OktaStatus::Deprovisioned => "DEPROVISIONED",
            OktaStatus::Other(s) => s,
        }
    }

    /// A user who can sign in (or is about to): attributes are synced for these.
    pub fn is_live(&self) -> bool {
        matches!(
            self,
            OktaStatus::Active
                | OktaStatus::Provisioned
                | OktaStatus::Recovery
                | OktaStatus::PasswordExpired
                | OktaStatus::LockedOut
        )
    }
}

/// RingCentral extension status.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TelusStatus {
    Enabled,
    Disabled,
    NotActivated,
    Frozen,
    Unassigned,
    Other(String),
}

impl TelusStatus {
    pub fn parse(s: &str) -> TelusStatus {
        match s {
            "Enabled" => TelusStatus::Enabled,
            "Disabled" => TelusStatus::Disabled,
            "NotActivated" => TelusStatus::NotActivated,
            "Frozen" => TelusStatus::Frozen,
            "Unassigned" => TelusStatus::Unassigned,
            other => TelusStatus::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            TelusStatus::Enabled => "Enabled",
            TelusStatus::Disabled => "Disabled",
            TelusStatus::NotActivated => "NotActivated",
            TelusStatus::Frozen => "Frozen",
            TelusStatus::Unassigned => "Unassigned",
            TelusStatus::Other(s) => s,
        }
    }
}

/// Marks a profile value that is not text (an object or a list): it is kept, so that it is
/// reported instead of being taken for an empty value that would clear the other side.
pub const UNREADABLE: char = '\u{1}';

/// An Okta user as the sync sees it: profile attributes by Okta name; absent or null means `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OktaUser {
    pub id: OktaId,
    pub status: OktaStatus,
    /// `lastUpdated` as Okta sent it (RFC 3339), used for incremental reads.
    pub last_updated: Option<String>,
    pub profile: BTreeMap<String, String>,
}

impl OktaUser {
    pub fn email(&self) -> Option<&str> {
        self.profile.get("email").map(String::as_str)
    }
}

/// A TELUS user (an extension of type `User`), fields keyed by their TELUS path:
/// `contact.firstName`, `contact.businessAddress.city`, `extensionNumber`, `directNumber`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TelusUser {
    pub id: ExtId,
    pub status: TelusStatus,
    pub fields: BTreeMap<String, String>,
}

impl TelusUser {
    pub fn email(&self) -> Option<&str> {
        self.fields.get(TELUS_EMAIL).map(String::as_str)
    }
}

pub const TELUS_EMAIL: &str = "contact.email";
pub const TELUS_EXTENSION_NUMBER: &str = "extensionNumber";
pub const TELUS_DIRECT_NUMBER: &str = "directNumber";

/// The TELUS fields a mapping row may name, and whether this tool may write them.
pub const TELUS_FIELDS: &[(&str, bool)] = &[
    ("contact.firstName", true),
    ("contact.lastName", true),
    ("contact.email", true),
    ("contact.mobilePhone", true),
    ("contact.businessPhone", true),
    ("contact.department", true),
    ("contact.jobTitle", true),
    ("contact.company", true),
    ("contact.businessAddress.street", true),
    ("contact.businessAddress.city", true),
    ("contact.businessAddress.state", true),
    ("contact.businessAddress.zip", true),
    ("contact.businessAddress.country", true),
    (TELUS_EXTENSION_NUMBER, false),
    (TELUS_DIRECT_NUMBER, false),
];

pub fn telus_field_writable(path: &str) -> Option<bool> {
    TELUS_FIELDS
        .iter()
        .find(|(p, _)| *p == path)
        .map(|(_, writable)| *writable)
}

/// A stored link between an Okta user and a TELUS extension.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Link {
    pub okta_id: OktaId,
    pub ext_id: ExtId,
}
