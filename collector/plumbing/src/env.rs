//! Environment variables in configuration files: `${NAME}`, `${NAME:-default}` and `$$` in
//! string values are replaced when a file is loaded, the same way for the agent and the
//! collector. The rule a reader must not miss: only string values are expanded, never keys or
//! comments, and a substituted value stays one TOML string, so it cannot change the file's
//! structure.

/// The value of environment variable `name` in this process, if it is set and valid UTF-8:
/// the `lookup` that [`expand_env_vars`] uses when a file is loaded.
pub fn process_environment(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Replaces `${NAME}` (the variable's value), `${NAME:-default}` (the default when the
/// variable is unset or empty) and `$$` (a literal `$`) in every string value of `text`, with
/// values from `lookup`; any other `$` stays as it is (a regex's `$` anchor). Substituted
/// values are TOML strings, so they cannot change the file's structure.
///
/// Returns the text unchanged when nothing was replaced (so that later error messages point
/// into the user's file), or when it is not TOML (the caller's parser says where it breaks).
///
/// # Errors
///
/// Every variable that is unset and has no default, every malformed name and every unclosed
/// `${`, one line each, naming the key it is in (`` `logs[0].paths[1]`: … ``).
pub fn expand_env_vars(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, Vec<String>> {
    let Ok(mut table) = toml::from_str::<toml::Table>(text) else {
        return Ok(text.to_owned());
    };
    let mut problems = Vec::new();
    let mut changed = false;
    for (key, value) in table.iter_mut() {
        expand_value(key, value, lookup, &mut problems, &mut changed);
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    if !changed {
        return Ok(text.to_owned());
    }
    Ok(toml::to_string(&table).expect("a parsed table serializes again"))
}

fn expand_value(
    at: &str,
    value: &mut toml::Value,
    lookup: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
    changed: &mut bool,
) {
    match value {
        toml::Value::String(text) if text.contains('$') => {
            let expanded = expand_env_in_string(at, text, lookup, problems);
            *changed |= expanded != *text;
            *text = expanded;
        }
        toml::Value::Array(items) => {
            for (index, item) in items.iter_mut().enumerate() {
                expand_value(&format!("{at}[{index}]"), item, lookup, problems, changed);
            }
        }
        toml::Value::Table(table) => {
            for (key, item) in table.iter_mut() {
                expand_value(&format!("{at}.{key}"), item, lookup, problems, changed);
            }
        }
        _ => {}
    }
}

fn expand_env_in_string(
    at: &str,
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
    problems: &mut Vec<String>,
) -> String {
    let mut expanded = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        expanded.push_str(&rest[..dollar]);
        let after_dollar = &rest[dollar + 1..];
        if let Some(after) = after_dollar.strip_prefix('$') {
            expanded.push('$');
            rest = after;
            continue;
        }
        let Some(reference) = after_dollar.strip_prefix('{') else {
            expanded.push('$');
            rest = after_dollar;
            continue;
        };
        let Some(close) = reference.find('}') else {
            problems.push(format!("`{at}`: `${{` without a closing `}}` in {text:?}"));
            return text.to_owned();
        };
        let (name, default) = match reference[..close].split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (&reference[..close], None),
        };
        let valid_name = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            problems.push(format!(
                "`{at}`: {name:?} is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*)"
            ));
        }
        match (lookup(name), default) {
            (Some(value), Some(default)) if value.is_empty() => expanded.push_str(default),
            (Some(value), _) => expanded.push_str(&value),
            (None, Some(default)) => expanded.push_str(default),
            (None, None) if valid_name => problems.push(format!(
                "`{at}`: environment variable {name} is not set (write ${{{name}:-default}} to give a default)"
            )),
            (None, None) => {}
        }
        rest = &reference[close + 1..];
    }
    expanded.push_str(rest);
    expanded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn environment(name: &str) -> Option<String> {
        match name {
            "DASK_CLUSTER" => Some("nightly-etl".to_owned()),
            "POD_NAME" => Some("worker-7f9c".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    /// The value at `path` (keys and array indexes) of `text` parsed as TOML, as a string.
    fn string_at(text: &str, path: &[&str]) -> String {
        let mut value = toml::Value::Table(toml::from_str(text).expect("expanded text is TOML"));
        for step in path {
            value = match step.parse::<usize>() {
                Ok(index) => value[index].clone(),
                Err(_) => value[*step].clone(),
            };
        }
        value.as_str().expect("a string value").to_owned()
    }

    #[test]
    fn env_references_in_string_values_are_replaced() {
        let text = r#"
# ${NOT_SET} in a comment is left alone
cluster = "${DASK_CLUSTER}"
node = "pod-${POD_NAME}-${ZONE:-eu}"
state_dir = "/var/lib/${EMPTY:-afterglow}"
port = 7700
[[logs]]
paths = ["/logs/${POD_NAME}/*.log"]
regex = '^(?P<message>.*costs \$$5)$'
[dask]
labels = { team = "${TEAM:-data}" }
"#;
        let expanded = expand_env_vars(text, &environment).expect("every variable resolves");
        assert_eq!(string_at(&expanded, &["cluster"]), "nightly-etl");
        assert_eq!(string_at(&expanded, &["node"]), "pod-worker-7f9c-eu");
        assert_eq!(
            string_at(&expanded, &["state_dir"]),
            "/var/lib/afterglow",
            "an empty variable takes the default"
        );
        assert_eq!(
            string_at(&expanded, &["logs", "0", "paths", "0"]),
            "/logs/worker-7f9c/*.log"
        );
        assert_eq!(
            string_at(&expanded, &["logs", "0", "regex"]),
            r"^(?P<message>.*costs \$5)$",
            "`$$` is one `$`; a lone `$` stays"
        );
        assert_eq!(string_at(&expanded, &["dask", "labels", "team"]), "data");
        assert!(
            !expanded.contains("NOT_SET"),
            "comments are dropped, not expanded"
        );
    }

    #[test]
    fn keys_are_not_expanded() {
        let text = "[labels]\n\"${POD_NAME}\" = \"x\"\n";
        assert_eq!(
            expand_env_vars(text, &environment).expect("no value to expand"),
            text
        );
    }

    #[test]
    fn a_file_without_env_references_is_returned_as_written() {
        let text =
            "cluster = \"c\"\n[[logs]]\npaths = [\"/l/*.log\"]\nregex = '^(?P<message>.*)$'\n";
        assert_eq!(
            expand_env_vars(text, &environment).expect("nothing to expand"),
            text
        );
        let broken = "cluster = \"${DASK_CLUSTER}\n";
        assert_eq!(
            expand_env_vars(broken, &environment).expect("left to the parser"),
            broken
        );
    }

    #[test]
    fn unset_env_variables_without_default_are_named() {
        let text = "cluster = \"${CLUSTER_NAME}\"\nnode = \"${NODE_NAME}-${POD_NAME}\"\n[[logs]]\npaths = [\"${LOG_DIR:-/logs}/*.log\", \"${bad-name}\"]\n";
        let problems = expand_env_vars(text, &environment).expect_err("two are unset");
        let all = problems.join("\n");
        for expected in [
            "`cluster`: environment variable CLUSTER_NAME is not set",
            "${CLUSTER_NAME:-default}",
            "`node`: environment variable NODE_NAME is not set",
            "`logs[0].paths[1]`: \"bad-name\" is not an environment variable name",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
        assert_eq!(problems.len(), 3, "{all}");
        let unclosed = expand_env_vars("cluster = \"${DASK_CLUSTER\"\n", &environment)
            .expect_err("unclosed reference");
        assert!(unclosed[0].contains("without a closing"), "{unclosed:?}");
    }
}
