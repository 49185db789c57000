//! One spelling per unit for the model, whichever of Smartcar's versions wrote it.

use serde_json::Value;

use super::jsonapi::s;

/// The spelling a model sees for a unit Smartcar writes in several ways: its pages drift between
/// versions (`amps` and `ampere`, `kWhr` and `kilowatt_hours`, `degrees-celsius` and `celsius`,
/// `kilometers-per-hour` and `kph`). A unit this table does not know passes through unchanged.
pub fn normalize_unit(unit: &str) -> String {
    let key: String = unit
        .trim()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '%' | '°'))
        .flat_map(char::to_lowercase)
        .collect();
    let canonical = match key.as_str() {
        "a" | "amp" | "amps" | "ampere" | "amperes" => "ampere",
        "c" | "°c" | "celsius" | "degreescelsius" | "degreecelsius" => "celsius",
        "f" | "°f" | "fahrenheit" | "degreesfahrenheit" => "fahrenheit",
        "kph" | "kmh" | "kmph" | "kilometersperhour" | "kilometresperhour" => "kph",
        "mph" | "milesperhour" => "miles_per_hour",
        "kwh" | "kwhr" | "kilowatthour" | "kilowatthours" => "kilowatt_hours",
        "w" | "watt" | "watts" => "watts",
        "kw" | "kilowatt" | "kilowatts" => "kilowatts",
        "v" | "volt" | "volts" => "volts",
        "count" | "counts" => "count",
        "%" | "percent" | "percentage" => "percent",
        "km" | "kilometer" | "kilometers" | "kilometre" | "kilometres" => "kilometers",
        "mi" | "mile" | "miles" => "miles",
        "l" | "liter" | "liters" | "litre" | "litres" => "liters",
        "gal" | "gallon" | "gallons" => "gallons",
        "min" | "mins" | "minute" | "minutes" => "minutes",
        "kpa" | "kilopascal" | "kilopascals" => "kPa",
        "psi" => "psi",
        _ => return unit.to_string(),
    };
    canonical.to_string()
}

pub(super) fn unit_of(v: Option<&Value>) -> Value {
    match s(v) {
        Value::String(u) => Value::String(normalize_unit(&u)),
        other => other,
    }
}

/// Normalises every `unit` string inside a structured body (records, capacities, odometers).
pub(super) fn normalize_units(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, child) in o.iter_mut() {
                match child {
                    Value::String(u) if k == "unit" => *u = normalize_unit(u),
                    _ => normalize_units(child),
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(normalize_units),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_upstream_unit_spelling_reaches_the_model_one_way() {
        for (upstream, seen) in [
            ("amps", "ampere"),
            ("ampere", "ampere"),
            ("A", "ampere"),
            ("degrees-celsius", "celsius"),
            ("celsius", "celsius"),
            ("kph", "kph"),
            ("kilometers-per-hour", "kph"),
            ("km/h", "kph"),
            ("kWhr", "kilowatt_hours"),
            ("kWh", "kilowatt_hours"),
            ("kilowatt_hours", "kilowatt_hours"),
            ("count", "count"),
            ("watts", "watts"),
            ("miles_per_hour", "miles_per_hour"),
            ("mph", "miles_per_hour"),
            ("Percent", "percent"),
            ("kPa", "kPa"),
        ] {
            assert_eq!(normalize_unit(upstream), seen, "{upstream}");
        }
        // An unknown unit is not guessed at.
        assert_eq!(
            normalize_unit("furlongs_per_fortnight"),
            "furlongs_per_fortnight"
        );
        // Units nested in a structured body are normalised too.
        let mut b = json!({ "values": [{ "energyAdded": 9.8, "unit": "kWhr" }] });
        normalize_units(&mut b);
        assert_eq!(b["values"][0]["unit"], "kilowatt_hours");
    }
}
