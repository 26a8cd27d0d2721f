//! Compact encoding of stored field maps: names are numbered once in `field_names`, and each
//! user's fields are stored as `[[id, "value"], ...]` instead of a JSON object repeating every
//! name. Older rows written as JSON objects are still read.

use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashMap;

#[derive(Debug, Default)]
pub(super) struct Names {
    by_name: HashMap<String, i64>,
    by_id: HashMap<i64, String>,
}

impl Names {
    pub(super) fn load(conn: &Connection) -> rusqlite::Result<Names> {
        let mut names = Names::default();
        let mut stmt = conn.prepare("SELECT id, name FROM field_names")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
        for row in rows {
            let (id, name) = row?;
            names.by_name.insert(name.clone(), id);
            names.by_id.insert(id, name);
        }
        Ok(names)
    }

    fn id(&mut self, conn: &Connection, name: &str) -> rusqlite::Result<i64> {
        if let Some(id) = self.by_name.get(name) {
            return Ok(*id);
        }
        let existing: Option<i64> = conn
            .query_row("SELECT id FROM field_names WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        let id = match existing {
            Some(id) => id,
            None => {
                conn.execute("INSERT INTO field_names (name) VALUES (?1)", params![name])?;
                conn.last_insert_rowid()
            }
        };
        self.by_name.insert(name.to_string(), id);
        self.by_id.insert(id, name.to_string());
        Ok(id)
    }

    /// `[[id, "value"], ...]`, numbering names not seen before.
    pub(super) fn encode<'a>(
        &mut self,
        conn: &Connection,
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> rusqlite::Result<String> {
        let mut out = String::from("[");
        for (i, (name, value)) in fields.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let id = self.id(conn, name)?;
            let quoted = serde_json::to_string(value).unwrap_or_else(|_| "\"\"".into());
            out.push_str(&format!("[{id},{quoted}]"));
        }
        out.push(']');
        Ok(out)
    }

    /// Reads either form: `[[id, "value"], ...]` or an object of name → value.
    pub(super) fn decode(&self, text: &str) -> Result<Vec<(String, String)>, String> {
        if text.starts_with('[') {
            // The compact form, decoded without an intermediate JSON tree.
            let items: Vec<(i64, String)> =
                serde_json::from_str(text).map_err(|e| e.to_string())?;
            return items
                .into_iter()
                .map(|(id, v)| match self.by_id.get(&id) {
                    Some(name) => Ok((name.clone(), v)),
                    None => Err(format!("unknown field name id {id}")),
                })
                .collect();
        }
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        match value {
            serde_json::Value::Object(map) => Ok(map
                .into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
                .collect()),
            serde_json::Value::Array(items) => items
                .into_iter()
                .map(|item| {
                    let id = item.get(0).and_then(serde_json::Value::as_i64);
                    let value = item.get(1).and_then(serde_json::Value::as_str);
                    match (id.and_then(|id| self.by_id.get(&id)), value) {
                        (Some(name), Some(v)) => Ok((name.clone(), v.to_string())),
                        _ => Err(format!("unknown field entry {item}")),
                    }
                })
                .collect(),
            other => Err(format!("not a field list: {other}")),
        }
    }
}
