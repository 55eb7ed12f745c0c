//! Checking params against an action's JSON Schema, and filling in its defaults.
//!
//! Plugins' schemas come from schemars with subschemas inlined, so this covers the subset
//! schemars emits: `type` (one or several), `properties`, `required`,
//! `additionalProperties: false`, `enum`, `const`, `items`, `minimum`/`maximum`,
//! `anyOf`/`oneOf`, and `default`. Anything else is accepted unchecked.

use serde_json::{Map, Value};

/// Fills the top-level `default`s of `schema` into `params` for properties it leaves out.
pub fn fill_defaults(schema: &Value, params: &mut Value) {
    let (Some(props), Some(obj)) = (
        schema.get("properties").and_then(Value::as_object),
        params.as_object_mut(),
    ) else {
        return;
    };
    for (name, prop) in props {
        if !obj.contains_key(name)
            && let Some(default) = prop.get("default")
        {
            obj.insert(name.clone(), default.clone());
        }
    }
}

/// Checks `value` against `schema`; the error names the path, e.g. `with.port: expected integer`.
pub fn validate(schema: &Value, value: &Value, path: &str) -> Result<(), String> {
    let Some(schema) = schema.as_object() else {
        return Ok(()); // `true` or a non-object schema accepts anything
    };
    if let Some(types) = schema.get("type") {
        let allowed: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        if !allowed.is_empty() && !allowed.iter().any(|t| type_matches(t, value)) {
            return Err(format!(
                "{path}: expected {}, got {}",
                allowed.join(" or "),
                describe(value)
            ));
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        let shown: Vec<String> = options.iter().map(|o| o.to_string()).collect();
        return Err(format!(
            "{path}: {} is not one of {}",
            value,
            shown.join(", ")
        ));
    }
    if let Some(c) = schema.get("const")
        && c != value
    {
        return Err(format!("{path}: expected {c}"));
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(alternatives) = schema.get(key).and_then(Value::as_array) {
            // schemars writes a documented enum as oneOf [{const: a}, {const: b}, …].
            let consts: Option<Vec<&Value>> = alternatives
                .iter()
                .map(|a| {
                    a.get("const").or_else(|| {
                        a.get("enum")
                            .and_then(|e| e.as_array())
                            .and_then(|e| (e.len() == 1).then(|| &e[0]))
                    })
                })
                .collect();
            if let Some(consts) = consts.filter(|c| !c.is_empty()) {
                if !consts.contains(&value) {
                    let shown: Vec<String> = consts.iter().map(|c| c.to_string()).collect();
                    return Err(format!(
                        "{path}: {} is not one of {}",
                        value,
                        shown.join(", ")
                    ));
                }
                continue;
            }
            let errors: Vec<String> = alternatives
                .iter()
                .filter_map(|s| validate(s, value, path).err())
                .collect();
            if errors.len() == alternatives.len() && !alternatives.is_empty() {
                return Err(errors
                    .into_iter()
                    .next()
                    .unwrap_or_else(|| format!("{path}: no alternative matches")));
            }
        }
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64)
            && n < min
        {
            return Err(format!("{path}: {n} is below the minimum {min}"));
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64)
            && n > max
        {
            return Err(format!("{path}: {n} is above the maximum {max}"));
        }
    }
    if let Value::Object(obj) = value {
        validate_object(schema, obj, path)?;
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            validate(item_schema, item, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

fn validate_object(
    schema: &Map<String, Value>,
    obj: &Map<String, Value>,
    path: &str,
) -> Result<(), String> {
    let props = schema.get("properties").and_then(Value::as_object);
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !obj.contains_key(name) {
                return Err(format!("{path}: missing required `{name}`"));
            }
        }
    }
    for (name, v) in obj {
        match props.and_then(|p| p.get(name)) {
            Some(prop) => validate(prop, v, &format!("{path}.{name}"))?,
            None => {
                if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
                    let known: Vec<&str> = props
                        .map(|p| p.keys().map(String::as_str).collect())
                        .unwrap_or_default();
                    return Err(format!(
                        "{path}: unknown param `{name}`{}",
                        if known.is_empty() {
                            String::new()
                        } else {
                            format!(" (expected one of: {})", known.join(", "))
                        }
                    ));
                }
            }
        }
    }
    Ok(())
}

fn type_matches(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "number" => v.is_number(),
        "integer" => v.as_i64().is_some() || v.as_u64().is_some(),
        _ => true,
    }
}

fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["table"],
            "properties": {
                "table": {"type": "string", "default": "nat"},
                "port": {"type": ["integer", "null"], "minimum": 0, "maximum": 65535},
                "command": {"enum": ["save", "spec"], "default": "save"},
                "ports": {"type": "array", "items": {"type": "integer"}}
            }
        })
    }

    #[test]
    fn accepts_and_rejects() {
        assert!(validate(&schema(), &json!({"table": "nat", "port": 80}), "with").is_ok());
        let e = validate(&schema(), &json!({"table": "nat", "prot": 80}), "with").unwrap_err();
        assert!(e.contains("unknown param `prot`"), "{e}");
        let e = validate(&schema(), &json!({"port": 80}), "with").unwrap_err();
        assert!(e.contains("missing required `table`"), "{e}");
        let e = validate(&schema(), &json!({"table": "nat", "port": "x"}), "with").unwrap_err();
        assert_eq!(e, "with.port: expected integer or null, got string \"x\"");
        let e = validate(
            &schema(),
            &json!({"table": "nat", "ports": [1, "a"]}),
            "with",
        )
        .unwrap_err();
        assert!(e.starts_with("with.ports[1]"), "{e}");
        let e = validate(
            &schema(),
            &json!({"table": "nat", "command": "list"}),
            "with",
        )
        .unwrap_err();
        assert!(e.contains("not one of"), "{e}");
        let e = validate(&schema(), &json!({"table": "nat", "port": 70000}), "with").unwrap_err();
        assert!(e.contains("maximum"), "{e}");
    }

    #[test]
    fn fills_defaults() {
        let mut p = json!({"port": 80});
        fill_defaults(&schema(), &mut p);
        assert_eq!(p, json!({"port": 80, "table": "nat", "command": "save"}));
    }
}
