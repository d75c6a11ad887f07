//! Upcasting: stored events keep the schema version they were written with, and are brought to
//! the current shape when read, so a payload change never breaks old events and history is
//! never rewritten. Add a step here whenever an event's data changes shape, and bump its
//! version in `current_schema_version`.

use serde_json::{Value, json};

use crate::StoreError;

/// Brings a stored payload to its current shape, or says which event could not be: the one
/// upcasting step every reader (loading an aggregate, tailing the log) goes through.
pub(crate) fn to_current(
    event_type: &str,
    schema_version: i32,
    data: Value,
    whereabouts: impl FnOnce() -> String,
) -> Result<Value, StoreError> {
    upcast(event_type, schema_version, data)
        .map_err(|error| StoreError::Corrupt(format!("{}: {error}", whereabouts())))
}

/// The schema version new events of this type are written with.
pub fn current_schema_version(event_type: &str) -> i32 {
    match event_type {
        // v1 carried `credit_limit` in whole currency units; v2 carries `credit_limit_cents`.
        "CustomerRegistered" => 2,
        _ => 1,
    }
}

/// Brings `data`, written at `schema_version`, to the current version of `event_type`.
pub fn upcast(event_type: &str, mut schema_version: i32, mut data: Value) -> Result<Value, String> {
    let target = current_schema_version(event_type);
    if schema_version > target {
        return Err(format!(
            "{event_type} has schema version {schema_version}, newer than this build knows ({target}); deploy the newer build"
        ));
    }
    while schema_version < target {
        data = upcast_one_step(event_type, schema_version, data)?;
        schema_version += 1;
    }
    Ok(data)
}

fn upcast_one_step(event_type: &str, from_version: i32, data: Value) -> Result<Value, String> {
    match (event_type, from_version) {
        ("CustomerRegistered", 1) => {
            let units = data
                .get("credit_limit")
                .and_then(Value::as_i64)
                .ok_or("CustomerRegistered v1 without an integer credit_limit")?;
            Ok(
                json!({ "name": data.get("name").cloned().unwrap_or(Value::Null), "credit_limit_cents": units * 100 }),
            )
        }
        _ => Err(format!("no upcaster for {event_type} v{from_version}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_registered_v1_whole_units_become_cents() {
        let v1 = json!({ "name": "Ada", "credit_limit": 25 });
        let current = upcast("CustomerRegistered", 1, v1).expect("upcast");
        assert_eq!(
            current,
            json!({ "name": "Ada", "credit_limit_cents": 2_500 })
        );
    }

    #[test]
    fn current_events_pass_through_and_future_ones_are_refused() {
        let data = json!({ "quantity": 3 });
        assert_eq!(
            upcast("ProductRestocked", 1, data.clone()),
            Ok(data.clone())
        );
        assert!(upcast("ProductRestocked", 2, data).is_err());
    }
}
