//! Malformed input, answered rather than dropped: what a line on stdio or an HTTP body that is not
//! one JSON-RPC message gets back (-32700 parse error, -32600 invalid request), and nothing for an
//! unparseable notification, which JSON-RPC never answers.

use std::borrow::Cow;

use rmcp::model::{
    CallToolRequest, CallToolRequestMethod, CallToolRequestParams, ClientJsonRpcMessage,
    ClientRequest, GetExtensions, InputResponses, JsonObject, JsonRpcRequest, JsonRpcVersion2_0,
    RequestId, RequestMetaObject,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// JSON-RPC 2.0: the text is not JSON.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC 2.0: JSON, but not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;

/// What one incoming message (a stdio line, an HTTP body) turned out to be.
#[derive(Debug)]
pub enum Incoming {
    /// A JSON-RPC message rmcp can serve.
    Message(Box<ClientJsonRpcMessage>),
    /// Nothing to do: a blank line, or a notification that is not a valid message (JSON-RPC
    /// answers no notification, valid or not).
    Ignore,
    /// Answer with this JSON-RPC error object and serve nothing.
    Refuse(Value),
}

/// A JSON-RPC error response; `id` is null when the message had no usable id.
pub fn error_response(id: Value, code: i64, message: &str) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": code, "message": message } })
}

/// Classifies the bytes of one message.
pub fn classify(bytes: &[u8]) -> Incoming {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Incoming::Ignore;
    }
    if let Some(m) = tool_call(bytes) {
        return Incoming::Message(Box::new(m));
    }
    // Nearly every message is good: parsed straight into rmcp's model it skips building and
    // dropping a whole `Value` tree first (callgrind: 59,000 instructions a line, now 39,000).
    // Only a message that fails is parsed again, below, to say why.
    if let Ok(m) = serde_json::from_slice::<ClientJsonRpcMessage>(bytes) {
        return Incoming::Message(Box::new(m));
    }
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            return Incoming::Refuse(error_response(
                Value::Null,
                PARSE_ERROR,
                &format!("Parse error: not JSON ({e})"),
            ));
        }
    };
    let (id, is_notification) = match &value {
        Value::Object(o) => {
            // Only a string or an integer can be echoed back as an id.
            let id = match o.get("id") {
                Some(Value::String(s)) => Value::String(s.clone()),
                Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Value::Number(n.clone()),
                _ => Value::Null,
            };
            let is_notification = !o.contains_key("id")
                && o.get("method").is_some_and(Value::is_string)
                && !o.contains_key("result")
                && !o.contains_key("error");
            (id, is_notification)
        }
        Value::Array(_) => {
            return Incoming::Refuse(error_response(
                Value::Null,
                INVALID_REQUEST,
                "Invalid request: JSON-RPC batches are not supported by MCP; send one message at a time",
            ));
        }
        _ => {
            return Incoming::Refuse(error_response(
                Value::Null,
                INVALID_REQUEST,
                "Invalid request: a JSON-RPC message is a JSON object",
            ));
        }
    };
    match serde_json::from_value::<ClientJsonRpcMessage>(value) {
        Ok(m) => Incoming::Message(Box::new(m)),
        Err(_) if is_notification => Incoming::Ignore,
        Err(e) => Incoming::Refuse(error_response(
            id,
            INVALID_REQUEST,
            &format!("Invalid request: not a JSON-RPC 2.0 message MCP defines ({e})"),
        )),
    }
}

/// JSON-RPC 2.0: the method does not exist.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC 2.0: the method exists but its params are wrong.
pub const INVALID_PARAMS: i64 = -32602;

/// Methods the 2026-07-28 revision removed: a request on it naming one is an unknown method
/// (SEP-2575), whatever its params.
const REMOVED_IN_2026_07_28: [&str; 4] = [
    "initialize",
    "resources/subscribe",
    "resources/unsubscribe",
    "logging/setLevel",
];

/// What a request rmcp could not read as any method it knows gets: -32602 naming the member at
/// fault when the method is MCP's and only its params are wrong (rmcp reads such a request as a
/// custom method, which would otherwise be answered "method not found"), else -32601. Both echo
/// the client's text cut to a bound. `stateless`: the request is on 2026-07-28 or later.
pub fn unknown_request(method: &str, params: Option<&Value>, stateless: bool) -> (i64, String) {
    use rmcp::model as m;
    let params = params.unwrap_or(&Value::Null);
    let problem = match method {
        _ if stateless && REMOVED_IN_2026_07_28.contains(&method) => None,
        "initialize" => Some(problem::<m::InitializeRequestParams>(params)),
        "tools/call" => Some(problem::<m::CallToolRequestParams>(params)),
        "resources/read" => Some(problem::<m::ReadResourceRequestParams>(params)),
        "resources/subscribe" => Some(problem::<m::SubscribeRequestParams>(params)),
        "resources/unsubscribe" => Some(problem::<m::UnsubscribeRequestParams>(params)),
        "prompts/get" => Some(problem::<m::GetPromptRequestParams>(params)),
        "completion/complete" => Some(problem::<m::CompleteRequestParams>(params)),
        "subscriptions/listen" => Some(problem::<m::SubscriptionsListenRequestParams>(params)),
        "tools/list" | "prompts/list" | "resources/list" | "resources/templates/list" => {
            Some(problem::<m::PaginatedRequestParams>(params))
        }
        _ => None,
    };
    match problem {
        Some(why) => (
            INVALID_PARAMS,
            format!("Invalid params for `{method}`: {why}"),
        ),
        None => (
            METHOD_NOT_FOUND,
            format!("Method not found: `{}`", crate::text::clip(method)),
        ),
    }
}

/// Where and why `params` is not a `T`, e.g. "`arguments`: invalid type: sequence, expected a
/// map".
fn problem<T: serde::de::DeserializeOwned>(params: &Value) -> String {
    let Err(e) = serde_path_to_error::deserialize::<_, T>(params) else {
        // They read well as a JSON value: what failed was the text itself, a member given twice.
        return "a member is given twice".to_string();
    };
    let path = e.path().to_string();
    let inner = crate::text::clip(&e.inner().to_string()).into_owned();
    if path == "." {
        format!("params: {inner}")
    } else {
        format!("`{path}`: {inner}")
    }
}

/// The one message that is most of the traffic, `tools/call` with nothing but the four members
/// JSON-RPC defines, read without rmcp's generic path. rmcp reads every message as an untagged
/// enum: the line is buffered into serde's `Content`, checked for its shape, then offered to each
/// of ClientRequest's 22 variants in turn until one's method matches, each refusal an error
/// built and dropped (callgrind: 38,000 instructions of a get_signal call's 303,000).
///
/// Any other message, or a tools/call with any member outside these (top-level or in `params`),
/// gets `None` and takes rmcp's path, so this can only ever agree with rmcp: the types are rmcp's
/// own, and `_meta` is moved into the request's extensions exactly as rmcp's reader does (tested
/// against it over a corpus below).
fn tool_call(bytes: &[u8]) -> Option<ClientJsonRpcMessage> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Envelope {
        #[allow(dead_code)]
        jsonrpc: JsonRpcVersion2_0,
        id: RequestId,
        #[allow(dead_code)]
        method: CallToolRequestMethod,
        params: Params,
    }
    // CallToolRequestParams's own fields and types, but refusing a member it does not know: rmcp
    // ignores one, and a member rmcp adds one day is where the two readers would part.
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Params {
        #[serde(rename = "_meta", default)]
        meta: Option<RequestMetaObject>,
        name: Cow<'static, str>,
        #[serde(default)]
        arguments: Option<JsonObject>,
        #[serde(default)]
        input_responses: Option<InputResponses>,
        #[serde(default)]
        request_state: Option<String>,
    }
    let Envelope { id, params: p, .. } = serde_json::from_slice(bytes).ok()?;
    let mut params = CallToolRequestParams::new(p.name);
    params.arguments = p.arguments;
    params.input_responses = p.input_responses;
    params.request_state = p.request_state;
    let mut request = CallToolRequest::new(params);
    if let Some(meta) = p.meta {
        request.extensions_mut().insert(meta);
    }
    Some(ClientJsonRpcMessage::Request(JsonRpcRequest::new(
        id,
        ClientRequest::CallToolRequest(request),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refusal(text: &str) -> Value {
        match classify(text.as_bytes()) {
            Incoming::Refuse(v) => v,
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn each_kind_of_bad_message_gets_its_code_and_the_id_when_it_has_one() {
        for (text, code, id) in [
            ("not json", PARSE_ERROR, Value::Null),
            ("{\"jsonrpc\":\"2.0\",", PARSE_ERROR, Value::Null),
            ("\u{FFFD}\u{0}", PARSE_ERROR, Value::Null),
            (
                "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}]",
                INVALID_REQUEST,
                Value::Null,
            ),
            ("[]", INVALID_REQUEST, Value::Null),
            ("\"ping\"", INVALID_REQUEST, Value::Null),
            ("42", INVALID_REQUEST, Value::Null),
            ("{\"foo\":1}", INVALID_REQUEST, Value::Null),
            (
                "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":5}",
                INVALID_REQUEST,
                json!(9),
            ),
            (
                "{\"jsonrpc\":\"1.0\",\"id\":\"a\",\"method\":\"ping\"}",
                INVALID_REQUEST,
                json!("a"),
            ),
            (
                "{\"jsonrpc\":\"2.0\",\"id\":{\"x\":1},\"method\":\"ping\"}",
                INVALID_REQUEST,
                Value::Null,
            ),
        ] {
            let r = refusal(text);
            assert_eq!(r["error"]["code"], code, "{text}: {r}");
            assert_eq!(r["id"], id, "{text}: {r}");
            assert_eq!(r["jsonrpc"], "2.0");
        }
    }

    #[test]
    fn good_messages_pass_and_blank_lines_and_bad_notifications_are_ignored() {
        let ok = classify(b"\xEF\xBB\xBF{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}");
        assert!(matches!(ok, Incoming::Message(_)), "{ok:?}");
        for quiet in [
            "",
            "   ",
            "\r",
            "{\"jsonrpc\":\"2.0\",\"method\":\"x/y\",\"params\":7}",
        ] {
            assert!(
                matches!(classify(quiet.as_bytes()), Incoming::Ignore),
                "{quiet:?}"
            );
        }
    }

    /// What a reader made of a tools/call: the id, rmcp's params, the `_meta` in the extensions,
    /// and the message as rmcp writes it back.
    fn tool_call_parts(m: &ClientJsonRpcMessage) -> (RequestId, Value, Option<Value>, Value) {
        let ClientJsonRpcMessage::Request(r) = m else {
            panic!("not a request: {m:?}")
        };
        let ClientRequest::CallToolRequest(call) = &r.request else {
            panic!("not tools/call: {m:?}")
        };
        (
            r.id.clone(),
            serde_json::to_value(&call.params).unwrap(),
            call.extensions
                .get::<RequestMetaObject>()
                .map(|m| serde_json::to_value(m).unwrap()),
            serde_json::to_value(m).unwrap(),
        )
    }

    #[test]
    fn the_tool_call_reader_agrees_with_rmcp_on_every_call_it_takes() {
        for text in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_signal","arguments":{"vehicle_id":"v","signal_code":"tractionbattery-stateofcharge"}}}"#,
            r#"{"params":{"arguments":{"a":[1,2.5,-3,1e300,18446744073709551615,{"b":null}]},"name":"x"},"method":"tools/call","id":"abc","jsonrpc":"2.0"}"#,
            r#" { "jsonrpc" : "2.0" , "id" : 7.0 , "method" : "tools/call" , "params" : { "name" : "lock_vehicle" } } "#,
            r#"{"jsonrpc":"2.0","id":9223372036854775807,"method":"tools/call","params":{"name":"x","arguments":null}}"#,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"_meta":{"progressToken":5,"x/y":{"z":1}},"name":"x","arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"_meta":null,"name":"\u00e9\n\"q\"","arguments":{"k\u0000":"\ud83d\ude97"}}}"#,
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"x","inputResponses":{"r1":{"action":"accept","content":{"ok":true}}},"requestState":"opaque=="}}"#,
            r#"{"jsonrpc":"2.0","id":-5,"method":"tools/call","params":{"name":"","arguments":{"a":"b","a":"c"}}}"#,
        ] {
            let fast = tool_call(text.as_bytes()).unwrap_or_else(|| panic!("not taken: {text}"));
            let rmcp: ClientJsonRpcMessage = serde_json::from_str(text).unwrap();
            assert_eq!(tool_call_parts(&fast), tool_call_parts(&rmcp), "{text}");
            let ClientJsonRpcMessage::Request(r) = &fast else {
                unreachable!()
            };
            let ClientRequest::CallToolRequest(call) = &r.request else {
                unreachable!()
            };
            // rmcp keeps `_meta` in the extensions only; the handler reads it from there.
            assert!(call.params.meta.is_none(), "{text}");
        }
    }

    #[test]
    fn anything_else_takes_rmcps_path_and_gets_rmcps_answer() {
        for text in [
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"name":"x"}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"},"extra":1}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x","task":{"ttl":5}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{}}}"#,
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#,
            r#"{"jsonrpc":"2.0","method":"tools/call","params":{"name":"x"}}"#,
        ] {
            assert!(tool_call(text.as_bytes()).is_none(), "{text}");
            let ours = match classify(text.as_bytes()) {
                Incoming::Message(m) => serde_json::to_value(*m).unwrap(),
                other => panic!("{text}: {other:?}"),
            };
            let rmcp: ClientJsonRpcMessage = serde_json::from_str(text).unwrap();
            assert_eq!(ours, serde_json::to_value(rmcp).unwrap(), "{text}");
        }
        // Invalid: a tools/call request that also carries a result is refused, as before.
        let r = refusal(
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"x"},"result":{}}"#,
        );
        assert_eq!(r["error"]["code"], INVALID_REQUEST);
        for bad_id in ["1.5", "true", "null", "18446744073709551615"] {
            let text = format!(
                r#"{{"jsonrpc":"2.0","id":{bad_id},"method":"tools/call","params":{{"name":"x"}}}}"#
            );
            assert!(tool_call(text.as_bytes()).is_none(), "{text}");
            assert!(
                serde_json::from_str::<ClientJsonRpcMessage>(&text).is_err(),
                "{text}"
            );
        }
    }
}
