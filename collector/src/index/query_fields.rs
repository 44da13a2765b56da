//! What each field of a log query may ask, checked on the parsed query before tantivy builds
//! it: a field that does not exist is refused by name, and `*` in a word becomes the wildcard a
//! user means. On a keyword field (`logger`, `node`, `cluster`, `source`, …, matched whole) a
//! `*` stands for any run of characters: `logger:distributed.worker*` is the logger and its
//! children, by a regular expression on the raw value. In the message a `*` ends a word:
//! `work*` is every word starting with `work`.
//!
//! The rule a reader must not miss: a query either runs as written or is refused saying why,
//! never a silent nothing. tantivy reads an unquoted `*` inside a word as a plain character
//! (a raw term `distributed.worker*` that no record holds) and drops it in the message, so
//! every `*` is either rewritten here or refused. Regular expressions typed as `/…/` stay
//! refused: only this rewrite builds them.

use tantivy::query_grammar::{Delimiter, UserInputAst, UserInputLeaf, UserInputLiteral};
use tantivy::schema::{FieldType, Schema};
use tantivy::tokenizer::TokenizerManager;

use crate::error::{Error, Result};
use crate::index::query::TENANT_FIELD;
use crate::index::schema::KEYWORD_FIELDS;

/// The field a word without `field:` searches.
pub const DEFAULT_FIELD: &str = "message";

/// How a field is searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldKind {
    /// A raw string, matched whole (`logger`, `node`, …; `tenant` is one too).
    Keyword,
    /// Tokenized text: words, case ignored (`message`).
    Text,
    /// Anything else (times, numbers): no wildcard.
    Other,
}

/// The names a query may use, for messages: the message and the keyword fields.
pub fn field_names() -> String {
    std::iter::once(DEFAULT_FIELD)
        .chain(KEYWORD_FIELDS)
        .chain(std::iter::once(TENANT_FIELD))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `name` is a field of the query language (`schema`'s, or `tenant`).
pub fn is_field(schema: &Schema, name: &str) -> bool {
    name == TENANT_FIELD || schema.get_field(name).is_ok()
}

fn field_kind(schema: &Schema, name: &str) -> Option<FieldKind> {
    if name == TENANT_FIELD {
        return Some(FieldKind::Keyword);
    }
    let field = schema.get_field(name).ok()?;
    Some(match schema.get_field_entry(field).field_type() {
        FieldType::Str(options) => match options.get_indexing_options() {
            Some(indexing) if indexing.tokenizer() == "raw" => FieldKind::Keyword,
            Some(_) => FieldKind::Text,
            None => FieldKind::Other,
        },
        _ => FieldKind::Other,
    })
}

/// `ast` with every field checked and every wildcard rewritten; `tenant:` leaves are kept
/// (`index::query` answers them per tenant, wildcards included).
pub fn check_fields(ast: UserInputAst, schema: &Schema) -> Result<UserInputAst> {
    Ok(match ast {
        UserInputAst::Clause(children) => UserInputAst::Clause(
            children
                .into_iter()
                .map(|(occur, child)| Ok((occur, check_fields(child, schema)?)))
                .collect::<Result<_>>()?,
        ),
        UserInputAst::Boost(child, boost) => {
            UserInputAst::Boost(Box::new(check_fields(*child, schema)?), boost)
        }
        UserInputAst::Leaf(leaf) => UserInputAst::Leaf(Box::new(check_leaf(*leaf, schema)?)),
    })
}

fn check_leaf(leaf: UserInputLeaf, schema: &Schema) -> Result<UserInputLeaf> {
    let kind_of = |name: &str, value: &str| {
        field_kind(schema, name).ok_or_else(|| unknown_field(name, value))
    };
    match leaf {
        UserInputLeaf::Literal(literal) => {
            let name = literal
                .field_name
                .clone()
                .unwrap_or_else(|| DEFAULT_FIELD.to_owned());
            let name = name.as_str();
            let kind = kind_of(name, &literal.phrase)?;
            if literal.delimiter != Delimiter::None || !literal.phrase.contains('*') {
                return Ok(UserInputLeaf::Literal(literal));
            }
            match kind {
                // Answered per tenant by `index::query`.
                FieldKind::Keyword if name == TENANT_FIELD => Ok(UserInputLeaf::Literal(literal)),
                FieldKind::Keyword => Ok(UserInputLeaf::Regex {
                    field: Some(name.to_owned()),
                    pattern: wildcard_regex(&literal.phrase),
                }),
                FieldKind::Text => word_prefix(literal, name),
                FieldKind::Other => Err(Error::BadQuery(format!(
                    "`{name}:{}`: `{name}` takes no wildcard",
                    literal.phrase
                ))),
            }
        }
        UserInputLeaf::Regex { .. } => Err(Error::BadQuery(
            "regular expressions (`/…/`) are not supported: use `*` in a word, as in `logger:distributed.worker*`"
                .to_owned(),
        )),
        UserInputLeaf::Set { field, elements } => {
            if let Some(name) = &field {
                kind_of(name, elements.first().map_or("", String::as_str))?;
            }
            if let Some(element) = elements.iter().find(|element| element.contains('*')) {
                return Err(Error::BadQuery(format!(
                    "`{element}`: a set (`IN [...]`) takes whole values, no wildcard; write `field:(a* OR b)`"
                )));
            }
            Ok(UserInputLeaf::Set { field, elements })
        }
        UserInputLeaf::Range { field, lower, upper } => {
            if let Some(name) = &field {
                kind_of(name, "[...]")?;
            }
            Ok(UserInputLeaf::Range {
                field,
                lower,
                upper,
            })
        }
        UserInputLeaf::Exists { field } => match kind_of(&field, "*")? {
            FieldKind::Keyword => Ok(UserInputLeaf::Exists { field }),
            // Every record has a message, a time and a number.
            FieldKind::Text | FieldKind::Other => Ok(UserInputLeaf::All),
        },
        UserInputLeaf::All => Ok(UserInputLeaf::All),
    }
}

fn unknown_field(name: &str, value: &str) -> Error {
    Error::BadQuery(format!(
        "`{name}` is not a field (fields: {}); to search the message for `{name}:{value}`, put it in quotes: \"{name}:{value}\"",
        field_names()
    ))
}

/// The regular expression (anchored, as tantivy's are) that a keyword `pattern` with `*`s
/// stands for: each `*` any run of characters, everything else itself.
pub fn wildcard_regex(pattern: &str) -> String {
    pattern
        .split('*')
        .map(regex::escape)
        .collect::<Vec<_>>()
        .join("(?s:.*)")
}

/// Whether `value` matches the keyword `pattern` (see `wildcard_regex`).
pub fn wildcard_matches(pattern: &str, value: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = value.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        // No `*`: the whole value.
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// A message word ending in `*` (`work*`, `distributed.work*`): the words before its last
/// as written, then any word starting with the last. A `*` elsewhere is refused.
fn word_prefix(literal: UserInputLiteral, name: &str) -> Result<UserInputLeaf> {
    let stem = literal.phrase.trim_end_matches('*');
    if stem.contains('*') {
        return Err(Error::BadQuery(format!(
            "`{}`: in the message, `*` ends a word (`work*`); put text in quotes to search for it as written",
            literal.phrase
        )));
    }
    let mut analyzer = TokenizerManager::default()
        .get("default")
        .expect("tantivy's default tokenizer is registered");
    let mut words: Vec<String> = Vec::new();
    analyzer
        .token_stream(stem)
        .process(&mut |token| words.push(token.text.clone()));
    let ends_in_word = stem.chars().last().is_some_and(char::is_alphanumeric);
    match words.as_slice() {
        [] => Err(Error::BadQuery(format!(
            "`{}`: a `*` needs letters or digits before it",
            literal.phrase
        ))),
        [word] if ends_in_word => Ok(UserInputLeaf::Regex {
            field: Some(name.to_owned()),
            pattern: format!("{}(?s:.*)", regex::escape(word)),
        }),
        // `distributed.*`: nothing of a next word is given, so the words before it.
        _ => Ok(UserInputLeaf::Literal(UserInputLiteral {
            phrase: stem.to_owned(),
            prefix: ends_in_word,
            ..literal
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::index::schema::LogSchema;

    /// The query tree after the check, as tantivy prints it (`"field":/regex/` for a regex).
    fn rewritten(query: &str) -> Result<String> {
        let ast = tantivy::query_grammar::parse_query(query).expect("parses");
        Ok(format!(
            "{:?}",
            check_fields(ast, &LogSchema::new().schema)?
        ))
    }

    #[test]
    fn keyword_wildcards_become_anchored_regexes() {
        assert_eq!(
            wildcard_regex("distributed.worker*"),
            "distributed\\.worker(?s:.*)"
        );
        assert_eq!(wildcard_regex("*a+b*"), "(?s:.*)a\\+b(?s:.*)");
        assert_eq!(
            rewritten("logger:distributed.worker*").expect("rewrites"),
            "\"logger\":/distributed\\.worker(?s:.*)/"
        );
        // Inside a field's group too.
        let text = rewritten("node:(w-* OR scheduler)").expect("rewrites");
        assert!(text.contains("\"node\":/w\\-(?s:.*)/"), "{text}");
        // Quoted, a `*` is a character.
        let text = rewritten("logger:\"distributed.worker*\"").expect("kept");
        assert_eq!(text, "\"logger\":\"distributed.worker*\"");
    }

    #[test]
    fn wildcard_matching_is_the_regexes() {
        for (pattern, value, matches) in [
            ("team-*", "team-a", true),
            ("team-*", "team-", true),
            ("team-*", "tea", false),
            ("*-a", "team-a", true),
            ("t*m*a", "team-a", true),
            ("t*m*a", "team-b", false),
            ("a*a", "a", false),
            ("*", "", true),
            ("exact", "exact", true),
            ("exact", "exactly", false),
        ] {
            assert_eq!(
                wildcard_matches(pattern, value),
                matches,
                "{pattern} {value}"
            );
            let regex =
                regex::Regex::new(&format!("^(?:{})$", wildcard_regex(pattern))).expect("a regex");
            assert_eq!(regex.is_match(value), matches, "{pattern} {value}");
        }
    }

    #[test]
    fn message_words_take_a_trailing_wildcard_only() {
        assert_eq!(
            rewritten("Work*").expect("a prefix"),
            "\"message\":/work(?s:.*)/"
        );
        assert_eq!(
            rewritten("distributed.work*").expect("a phrase prefix"),
            "distributed.work*"
        );
        assert_eq!(rewritten("distributed.*").expect("a word"), "distributed.");
        for bad in ["wo*rk", "*work", "message:a*b*", "seq:1*"] {
            let error = rewritten(bad).expect_err(bad);
            assert!(error.to_string().contains('*'), "{bad}: {error}");
        }
    }

    #[test]
    fn unknown_fields_and_regexes_are_refused_by_name() {
        let error = rewritten("foo:bar").expect_err("no field foo");
        let message = error.to_string();
        assert!(message.contains("`foo` is not a field"), "{message}");
        assert!(message.contains("\"foo:bar\""), "{message}");
        assert!(rewritten("level:ERROR AND nosuch:[a TO b]").is_err());
        assert!(rewritten("nosuch:*").is_err());
        assert!(rewritten("logger:/distributed.*/").is_err());
        assert!(rewritten("tenant:team-* AND level:ERROR").is_ok());
    }
}
