//! Validates API responses against `contract/openapi.yaml`: status declared for the operation,
//! error codes declared in `x-authara-error-codes`, bodies matching their schemas (including
//! `additionalProperties: false`), and no body where none is declared. Webhook bodies are checked
//! against their event's payload in `contract/webhooks.yaml` by the same schema check.

use std::sync::LazyLock;

use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

pub fn to_json(y: &Yaml) -> Value {
    match y {
        Yaml::Real(s) => s.parse::<f64>().map(Value::from).unwrap_or(Value::Null),
        Yaml::Integer(i) => Value::from(*i),
        Yaml::String(s) => Value::from(s.clone()),
        Yaml::Boolean(b) => Value::from(*b),
        Yaml::Array(a) => Value::Array(a.iter().map(to_json).collect()),
        Yaml::Hash(h) => Value::Object(
            h.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(i) => i.to_string(),
                        other => format!("{other:?}"),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        _ => Value::Null,
    }
}

fn load(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contract").join(name);
    let text = std::fs::read_to_string(path).unwrap();
    to_json(&YamlLoader::load_from_str(&text).unwrap()[0])
}

/// Adds `extra`'s keys to `base`, recursively for objects present in both; lists are joined.
fn merge(base: &mut Value, extra: &Value) {
    match (base, extra) {
        (Value::Object(b), Value::Object(e)) => {
            for (k, v) in e {
                match b.get_mut(k) {
                    Some(existing) => merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(b), Value::Array(e)) => {
            b.extend(e.iter().filter(|v| !b.contains(v)).cloned().collect::<Vec<_>>())
        }
        (b, e) => *b = e.clone(),
    }
}

/// The reference's contract with our documented additions (`contract/extensions.yaml`) merged in.
pub static SPEC: LazyLock<Value> = LazyLock::new(|| {
    let mut spec = load("openapi.yaml");
    merge(&mut spec, &load("extensions.yaml"));
    spec
});

fn resolve(v: &Value) -> &Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let mut cur = &*SPEC;
            for part in r.trim_start_matches("#/").split('/') {
                cur = &cur[part];
            }
            resolve(cur)
        }
        None => v,
    }
}

/// The operation for a concrete path, matching `{param}` segments.
fn operation(method: &str, path: &str) -> Option<&'static Value> {
    let paths = SPEC["paths"].as_object()?;
    let segs: Vec<&str> = path.split('/').collect();
    let (_, item) = paths.iter().find(|(template, _)| {
        let t: Vec<&str> = template.split('/').collect();
        t.len() == segs.len() && t.iter().zip(&segs).all(|(a, b)| (a.starts_with('{') && a.ends_with('}')) || a == b)
    })?;
    item.get(method.to_ascii_lowercase())
}

fn check(schema: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    let schema = resolve(schema);
    if v.is_null() && schema.get("nullable") == Some(&Value::Bool(true)) {
        return;
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array)
        && !options.contains(v)
    {
        errors.push(format!("{at}: {v} not in enum {options:?}"));
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {
            let Some(obj) = v.as_object() else { return errors.push(format!("{at}: expected object, got {v}")) };
            let props = schema.get("properties").and_then(Value::as_object);
            for req in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
                let name = req.as_str().unwrap_or_default();
                if !obj.contains_key(name) {
                    errors.push(format!("{at}: missing required {name}"));
                }
            }
            for (k, val) in obj {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => check(s, val, &format!("{at}.{k}"), errors),
                    None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                        errors.push(format!("{at}: unexpected property {k}"))
                    }
                    None => {}
                }
            }
        }
        Some("array") => match v.as_array() {
            Some(items) => {
                for (i, item) in items.iter().enumerate() {
                    check(&schema["items"], item, &format!("{at}[{i}]"), errors);
                }
            }
            None => errors.push(format!("{at}: expected array, got {v}")),
        },
        Some("string") => match v.as_str() {
            Some(s) => match schema.get("format").and_then(Value::as_str) {
                Some("uuid") if uuid::Uuid::parse_str(s).is_err() => errors.push(format!("{at}: {s} is not a uuid")),
                Some("date-time") if !(s.len() >= 20 && s.as_bytes()[10] == b'T' && s.ends_with('Z')) => {
                    errors.push(format!("{at}: {s} is not an RFC 3339 date-time"))
                }
                Some("email") if !s.contains('@') => errors.push(format!("{at}: {s} is not an email")),
                _ => {}
            },
            None => errors.push(format!("{at}: expected string, got {v}")),
        },
        Some("boolean") if !v.is_boolean() => errors.push(format!("{at}: expected boolean, got {v}")),
        Some("integer") if !v.is_i64() => errors.push(format!("{at}: expected integer, got {v}")),
        _ => {}
    }
}

/// Whether the contract describes `path` (a query string is ignored): the JSON API and the
/// internal API. Pages, `/auth/health`, `/auth/version` and the JWKS are outside it.
pub fn describes(path: &str) -> bool {
    let path = path.split('?').next().unwrap_or_default();
    path.starts_with("/auth/api/") || path.starts_with("/auth/internal/")
}

/// Checks one answer against the contract when the contract describes its path; the one gate
/// every answer of the suite passes (`TestClient::send`, `app::send_checked`).
pub fn validate_if_described(method: &str, path: &str, status: u16, content_type: Option<&str>, body: &[u8]) {
    if describes(path) {
        validate(method, path.split('?').next().unwrap_or_default(), status, content_type, body);
    }
}

/// Panics with every deviation of one response from the contract.
pub fn validate(method: &str, path: &str, status: u16, content_type: Option<&str>, body: &[u8]) {
    let Some(op) = operation(method, path) else {
        // Routes the contract does not have must answer the 404/405 envelope.
        assert!(matches!(status, 404 | 405), "{method} {path}: not in the contract but answered {status}");
        return;
    };
    let id = op["operationId"].as_str().unwrap_or(path);
    let status_key = status.to_string();
    // `x-authara-csrf: required` implies `403 forbidden` on a failed check, even where the
    // operation does not list it (refreshSession); the Go SDK relies on that 403. Another 403
    // must be declared like any answer.
    if status == 403 && op["x-authara-csrf"] == "required" {
        let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let declared = op["x-authara-error-codes"]["403"].as_array().cloned().unwrap_or_default();
        if !declared.iter().any(|c| *c == v["error"]["code"]) {
            assert_eq!(v["error"]["code"], "forbidden", "{id}: CSRF failures answer forbidden");
            return;
        }
    }
    let response = op["responses"].get(&status_key).map(resolve);
    let Some(response) = response else {
        panic!("{id}: status {status} is not declared (body: {})", String::from_utf8_lossy(body));
    };
    let schema = response.get("content").and_then(|c| c.get("application/json")).and_then(|j| j.get("schema"));
    let Some(schema) = schema else {
        assert!(body.is_empty(), "{id} {status}: no body declared, got {}", String::from_utf8_lossy(body));
        return;
    };
    assert!(
        content_type.is_some_and(|c| c.starts_with("application/json")),
        "{id} {status}: content type {content_type:?}"
    );
    let value: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{id} {status}: body is not JSON ({e}): {}", String::from_utf8_lossy(body)));
    let mut errors = Vec::new();
    check(schema, &value, "$", &mut errors);
    if status >= 400 {
        let code = value["error"]["code"].as_str().unwrap_or_default();
        let declared = op["x-authara-error-codes"][&status_key].as_array().cloned().unwrap_or_default();
        if !declared.iter().any(|c| c == code) {
            errors.push(format!("error code {code} not declared for {status} (declared: {declared:?})"));
        }
    }
    assert!(errors.is_empty(), "{id} {status} deviates from the contract: {errors:#?}\nbody: {value}");
}

/// `contract/webhooks.yaml`.
pub static WEBHOOKS: LazyLock<Value> = LazyLock::new(|| load("webhooks.yaml"));

/// The event types `contract/webhooks.yaml` lists, in its order.
pub fn webhook_event_types() -> Vec<String> {
    let events = WEBHOOKS["events"].as_array().expect("webhooks.yaml lists events");
    events.iter().map(|e| e["type"].as_str().expect("every event has a type").to_owned()).collect()
}

/// A payload of `webhooks.yaml` as a schema `check` reads: every key of a map required and no
/// other allowed; `string`, `boolean`, `object`, `uuid`, `rfc3339` as their types, `|null` as
/// nullable, and any other word (the `type` field's value) as the one value allowed.
fn payload_schema(payload: &Value) -> Value {
    match payload {
        Value::Object(fields) => serde_json::json!({
            "type": "object",
            "additionalProperties": false,
            "required": fields.keys().collect::<Vec<_>>(),
            "properties": fields.iter().map(|(k, v)| (k.clone(), payload_schema(v))).collect::<serde_json::Map<_, _>>(),
        }),
        Value::String(word) => {
            let (word, nullable) = match word.strip_suffix("|null") {
                Some(w) => (w, true),
                None => (word.as_str(), false),
            };
            let mut schema = match word {
                "string" => serde_json::json!({"type": "string"}),
                "boolean" => serde_json::json!({"type": "boolean"}),
                "object" => serde_json::json!({"type": "object"}),
                "uuid" => serde_json::json!({"type": "string", "format": "uuid"}),
                "rfc3339" => serde_json::json!({"type": "string", "format": "date-time"}),
                literal => serde_json::json!({"type": "string", "enum": [literal]}),
            };
            if nullable {
                schema["nullable"] = Value::Bool(true);
            }
            schema
        }
        other => panic!("webhooks.yaml: a payload field is {other}"),
    }
}

/// Panics with every deviation of one webhook body from its event's payload in
/// `contract/webhooks.yaml` (an event type the contract does not list is one).
pub fn validate_webhook(body: &[u8]) {
    let value: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("a webhook body is not JSON ({e}): {}", String::from_utf8_lossy(body)));
    let kind = value["type"].as_str().unwrap_or_default();
    let events = WEBHOOKS["events"].as_array().expect("webhooks.yaml lists events");
    let Some(event) = events.iter().find(|e| e["type"] == kind) else {
        panic!("webhook type {kind:?} is not in contract/webhooks.yaml: {value}");
    };
    let mut errors = Vec::new();
    check(&payload_schema(&event["payload"]), &value, "$", &mut errors);
    assert!(errors.is_empty(), "{kind} deviates from contract/webhooks.yaml: {errors:#?}\nbody: {value}");
}
