//! Strict reading of a configuration file: TOML into a typed value, with every unknown key and
//! every problem the value's own checks find reported together, so an operator fixes a file in
//! one pass instead of one error per start.

use serde::de::DeserializeOwned;

/// Parses `text` into `T`, then runs `validate` on it. The answer is the value, or every
/// problem: each unknown key (a misspelt setting must not be silently ignored), then what
/// `validate` found. A syntax or type error is reported alone, since nothing can be checked
/// after it.
pub fn parse_validated<T: DeserializeOwned>(
    text: &str,
    validate: impl FnOnce(&T) -> Vec<String>,
) -> Result<T, Vec<String>> {
    let deserializer = toml::Deserializer::parse(text).map_err(|error| vec![error.to_string()])?;
    let mut problems = Vec::new();
    let value: T = serde_ignored::deserialize(deserializer, |path| {
        problems.push(format!("unknown key `{path}`"));
    })
    .map_err(|error| vec![error.to_string()])?;
    problems.extend(validate(&value));
    if problems.is_empty() {
        Ok(value)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::parse_validated;

    #[derive(Debug, Deserialize)]
    struct Settings {
        #[serde(default)]
        port: u16,
    }

    fn port_not_zero(settings: &Settings) -> Vec<String> {
        if settings.port == 0 {
            vec!["`port` must not be 0".to_owned()]
        } else {
            Vec::new()
        }
    }

    #[test]
    fn unknown_keys_and_invalid_values_are_reported_together() {
        let problems = parse_validated("prot = 1\n", port_not_zero).expect_err("two problems");
        assert_eq!(problems, ["unknown key `prot`", "`port` must not be 0"]);
    }

    #[test]
    fn a_valid_file_gives_its_value() {
        let settings = parse_validated("port = 7\n", port_not_zero).expect("valid");
        assert_eq!(settings.port, 7);
    }

    #[test]
    fn a_type_error_is_reported_alone() {
        let problems =
            parse_validated::<Settings>("port = \"x\"\n", port_not_zero).expect_err("not a number");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("port"), "{problems:?}");
    }
}
