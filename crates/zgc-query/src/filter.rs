//! The AIP-160 filter subset: parsing with positioned errors, type checking
//! against a [`Schema`], evaluation against a [`Record`].
//!
//! Grammar (as in AIP-160, `OR` binds tighter than `AND`):
//!
//! ```text
//! filter      := ε | conjunction
//! conjunction := disjunction ("AND" disjunction)*
//! disjunction := unary ("OR" unary)*
//! unary       := "NOT" unary | "(" conjunction ")" | restriction
//! restriction := field op literal | field ":" (literal | "*")
//! op          := "=" | "!=" | "<" | "<=" | ">" | ">="
//! literal     := "double-quoted string" | integer | true | false | ENUM_NAME
//! ```
//!
//! Keywords are upper case, as in AIP-160. A map field `labels` is addressed
//! as `labels.<key>`; a comparison on a key the record lacks is false, and so
//! is its negation's operand (`NOT labels.x = "y"` is true for records
//! without `x`).

use std::fmt;

use crate::schema::{FieldType, Record, Schema, Value};

/// The longest filter accepted, in bytes.
pub const MAX_FILTER_BYTES: usize = 8 * 1024;
/// The deepest nesting of parentheses and `NOT` accepted.
pub const MAX_DEPTH: usize = 32;
/// The most restrictions (comparisons) one filter may hold.
pub const MAX_RESTRICTIONS: usize = 256;

/// Why a filter was rejected. `position` is the 1-based character column
/// where the problem starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid filter at position {position}: {message}")]
pub struct FilterError {
    /// 1-based character column.
    pub position: usize,
    /// What is wrong there.
    pub message: String,
}

impl FilterError {
    fn new(position: usize, message: impl Into<String>) -> Self {
        Self {
            position,
            message: message.into(),
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => ord == Equal,
            CmpOp::Ne => ord != Equal,
            CmpOp::Lt => ord == Less,
            CmpOp::Le => ord != Greater,
            CmpOp::Gt => ord == Greater,
            CmpOp::Ge => ord != Less,
        }
    }
}

/// A literal on the right of a restriction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Literal {
    /// A string, or an enum value name.
    Str(String),
    /// An integer.
    Int(i64),
    /// `true` or `false`.
    Bool(bool),
}

/// A field reference: a schema field, and for maps the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRef {
    /// The schema field, e.g. `location.city` or `labels`.
    pub path: String,
    /// For `labels.<key>`, the key.
    pub key: Option<String>,
}

/// The argument of the has operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HasArg {
    /// `field:*`: present and non-empty.
    Any,
    /// `field:"value"`: contains the value.
    Value(String),
}

/// A checked filter expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    /// All must hold.
    And(Vec<Expr>),
    /// At least one must hold.
    Or(Vec<Expr>),
    /// Must not hold.
    Not(Box<Expr>),
    /// `field op literal`.
    Compare {
        /// The field.
        field: FieldRef,
        /// The operator.
        op: CmpOp,
        /// The literal.
        value: Literal,
    },
    /// `field:arg`.
    Has {
        /// The field.
        field: FieldRef,
        /// What it must have.
        arg: HasArg,
    },
}

/// A parsed, type-checked filter. The empty filter matches everything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    root: Option<Expr>,
}

impl Filter {
    /// Parses and checks `text` against `schema`.
    pub fn parse(text: &str, schema: &Schema) -> Result<Self, FilterError> {
        if text.len() > MAX_FILTER_BYTES {
            return Err(FilterError::new(
                1,
                format!("the filter is longer than {MAX_FILTER_BYTES} bytes"),
            ));
        }
        let tokens = lex(text)?;
        let mut parser = Parser {
            tokens,
            next: 0,
            schema,
            depth: 0,
            restrictions: 0,
            end: text.chars().count() + 1,
        };
        if parser.tokens.is_empty() {
            return Ok(Self::default());
        }
        let root = parser.conjunction()?;
        if let Some(tok) = parser.peek() {
            return Err(FilterError::new(
                tok.pos,
                format!(
                    "expected AND, OR or the end of the filter, found {}",
                    tok.kind
                ),
            ));
        }
        Ok(Self { root: Some(root) })
    }

    /// Builds a filter from an expression (no checks: for tests and callers
    /// that construct filters directly).
    pub fn from_expr(root: Option<Expr>) -> Self {
        Self { root }
    }

    /// The root expression, `None` for the empty filter.
    pub fn expr(&self) -> Option<&Expr> {
        self.root.as_ref()
    }

    /// Whether the record matches.
    pub fn matches(&self, record: &dyn Record) -> bool {
        self.root.as_ref().is_none_or(|e| eval(e, record))
    }

    /// The value `field` must equal (as a top-level `AND` conjunct
    /// `field = "value"`) for any record to match, if the filter says so.
    /// Lets a caller narrow its scan with an index.
    pub fn required_equality(&self, field: &str) -> Option<&str> {
        fn find<'a>(e: &'a Expr, field: &str) -> Option<&'a str> {
            match e {
                Expr::Compare {
                    field: f,
                    op: CmpOp::Eq,
                    value: Literal::Str(v),
                } if f.path == field && f.key.is_none() => Some(v),
                Expr::And(items) => items.iter().find_map(|i| find(i, field)),
                _ => None,
            }
        }
        self.root.as_ref().and_then(|e| find(e, field))
    }
}

/// Prints the canonical, fully parenthesised form, which parses back to the
/// same filter. Used to bind page tokens to a filter regardless of spacing.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.root {
            None => Ok(()),
            Some(e) => write!(f, "{e}"),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn join(f: &mut fmt::Formatter<'_>, items: &[Expr], sep: &str) -> fmt::Result {
            f.write_str("(")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    write!(f, " {sep} ")?;
                }
                write!(f, "{item}")?;
            }
            f.write_str(")")
        }
        match self {
            Expr::And(items) => join(f, items, "AND"),
            Expr::Or(items) => join(f, items, "OR"),
            Expr::Not(inner) => write!(f, "NOT {inner}"),
            Expr::Compare { field, op, value } => {
                write!(f, "{field} {} {value}", op.symbol())
            }
            Expr::Has { field, arg } => match arg {
                HasArg::Any => write!(f, "{field}:*"),
                HasArg::Value(v) => write!(f, "{field}:{}", quote(v)),
            },
        }
    }
}

impl fmt::Display for FieldRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            None => f.write_str(&self.path),
            Some(k) => write!(f, "{}.{k}", self.path),
        }
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Str(s) => f.write_str(&quote(s)),
            Literal::Int(i) => write!(f, "{i}"),
            Literal::Bool(b) => write!(f, "{b}"),
        }
    }
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------- evaluation

fn eval(expr: &Expr, record: &dyn Record) -> bool {
    match expr {
        Expr::And(items) => items.iter().all(|e| eval(e, record)),
        Expr::Or(items) => items.iter().any(|e| eval(e, record)),
        Expr::Not(inner) => !eval(inner, record),
        Expr::Compare { field, op, value } => {
            let Some(actual) = record.value(&field.path, field.key.as_deref()) else {
                return false;
            };
            match (actual, value) {
                (Value::Str(a), Literal::Str(b)) | (Value::MapEntry(Some(a)), Literal::Str(b)) => {
                    op.holds(a.cmp(b.as_str()))
                }
                (Value::Int(a), Literal::Int(b)) => op.holds(a.cmp(b)),
                (Value::Bool(a), Literal::Bool(b)) => op.holds(a.cmp(b)),
                _ => false,
            }
        }
        Expr::Has { field, arg } => {
            let Some(actual) = record.value(&field.path, field.key.as_deref()) else {
                return false;
            };
            match (actual, arg) {
                (Value::List(items), HasArg::Any) => !items.is_empty(),
                (Value::List(items), HasArg::Value(v)) => items.iter().any(|i| i == v),
                (Value::MapKeys(keys), HasArg::Any) => !keys.is_empty(),
                (Value::MapKeys(keys), HasArg::Value(v)) => keys.iter().any(|k| k == v),
                (Value::MapEntry(entry), HasArg::Any) => entry.is_some(),
                (Value::MapEntry(entry), HasArg::Value(v)) => entry == Some(v.as_str()),
                _ => false,
            }
        }
    }
}

// ------------------------------------------------------------------- lexing

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    LParen,
    RParen,
    Op(CmpOp),
    Colon,
    Star,
    Str(String),
    Int(i64),
    Word(String),
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::LParen => f.write_str("`(`"),
            Kind::RParen => f.write_str("`)`"),
            Kind::Op(op) => write!(f, "`{}`", op.symbol()),
            Kind::Colon => f.write_str("`:`"),
            Kind::Star => f.write_str("`*`"),
            Kind::Str(s) => write!(f, "the string {}", quote(s)),
            Kind::Int(i) => write!(f, "the number {i}"),
            Kind::Word(w) => write!(f, "`{w}`"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    kind: Kind,
    pos: usize,
}

fn lex(text: &str) -> Result<Vec<Token>, FilterError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let pos = i + 1;
        let single = |kind| Token { kind, pos };
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                tokens.push(single(Kind::LParen));
                i += 1;
            }
            ')' => {
                tokens.push(single(Kind::RParen));
                i += 1;
            }
            ':' => {
                tokens.push(single(Kind::Colon));
                i += 1;
            }
            '*' => {
                tokens.push(single(Kind::Star));
                i += 1;
            }
            '=' => {
                tokens.push(single(Kind::Op(CmpOp::Eq)));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(single(Kind::Op(CmpOp::Ne)));
                i += 2;
            }
            '<' | '>' => {
                let eq = chars.get(i + 1) == Some(&'=');
                let op = match (c, eq) {
                    ('<', false) => CmpOp::Lt,
                    ('<', true) => CmpOp::Le,
                    (_, false) => CmpOp::Gt,
                    (_, true) => CmpOp::Ge,
                };
                tokens.push(single(Kind::Op(op)));
                i += if eq { 2 } else { 1 };
            }
            '"' => {
                let mut value = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(FilterError::new(pos, "unterminated string")),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            let escaped = match chars.get(i + 1) {
                                Some('"') => '"',
                                Some('\\') => '\\',
                                Some('n') => '\n',
                                Some('t') => '\t',
                                Some('r') => '\r',
                                _ => {
                                    return Err(FilterError::new(
                                        i + 1,
                                        "unknown escape; use \\\", \\\\, \\n, \\t or \\r",
                                    ));
                                }
                            };
                            value.push(escaped);
                            i += 2;
                        }
                        Some(&ch) => {
                            value.push(ch);
                            i += 1;
                        }
                    }
                }
                tokens.push(single(Kind::Str(value)));
            }
            c if c.is_ascii_digit()
                || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let start = i;
                i += 1;
                while chars.get(i).is_some_and(char::is_ascii_digit) {
                    i += 1;
                }
                let digits: String = chars[start..i].iter().collect();
                let value = digits.parse::<i64>().map_err(|_| {
                    FilterError::new(pos, format!("the number {digits} does not fit in 64 bits"))
                })?;
                tokens.push(single(Kind::Int(value)));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while chars
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
                {
                    i += 1;
                }
                tokens.push(single(Kind::Word(chars[start..i].iter().collect())));
            }
            other => {
                return Err(FilterError::new(
                    pos,
                    format!("unexpected character {other:?}"),
                ));
            }
        }
    }
    Ok(tokens)
}

// ------------------------------------------------------------------ parsing

struct Parser<'s> {
    tokens: Vec<Token>,
    next: usize,
    schema: &'s Schema,
    depth: usize,
    restrictions: usize,
    end: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn bump(&mut self) -> Option<Token> {
        let tok = self.tokens.get(self.next).cloned();
        self.next += 1;
        tok
    }

    fn at_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token { kind: Kind::Word(w), .. }) if w == word)
    }

    fn expect_more(&mut self, what: &str) -> Result<Token, FilterError> {
        self.bump().ok_or_else(|| {
            FilterError::new(
                self.end,
                format!("expected {what}, found the end of the filter"),
            )
        })
    }

    fn conjunction(&mut self) -> Result<Expr, FilterError> {
        let mut items = vec![self.disjunction()?];
        while self.at_word("AND") {
            self.bump();
            items.push(self.disjunction()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::And(items)
        })
    }

    fn disjunction(&mut self) -> Result<Expr, FilterError> {
        let mut items = vec![self.unary()?];
        while self.at_word("OR") {
            self.bump();
            items.push(self.unary()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Or(items)
        })
    }

    fn nested<T>(
        &mut self,
        pos: usize,
        f: impl FnOnce(&mut Self) -> Result<T, FilterError>,
    ) -> Result<T, FilterError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(FilterError::new(
                pos,
                format!("the filter nests deeper than {MAX_DEPTH} levels"),
            ));
        }
        let result = f(self);
        self.depth -= 1;
        result
    }

    fn unary(&mut self) -> Result<Expr, FilterError> {
        let tok = self.expect_more("a restriction, `NOT` or `(`")?;
        match tok.kind {
            Kind::Word(ref w) if w == "NOT" => {
                self.nested(tok.pos, |p| Ok(Expr::Not(Box::new(p.unary()?))))
            }
            Kind::LParen => self.nested(tok.pos, |p| {
                let inner = p.conjunction()?;
                match p.bump() {
                    Some(Token {
                        kind: Kind::RParen, ..
                    }) => Ok(inner),
                    Some(other) => Err(FilterError::new(
                        other.pos,
                        format!("expected `)`, AND or OR, found {}", other.kind),
                    )),
                    None => Err(FilterError::new(
                        p.end,
                        format!("unclosed `(` at position {}", tok.pos),
                    )),
                }
            }),
            Kind::Word(w) if !matches!(w.as_str(), "AND" | "OR") => self.restriction(w, tok.pos),
            other => Err(FilterError::new(
                tok.pos,
                format!("expected a field name, `NOT` or `(`, found {other}"),
            )),
        }
    }

    fn restriction(&mut self, word: String, pos: usize) -> Result<Expr, FilterError> {
        self.restrictions += 1;
        if self.restrictions > MAX_RESTRICTIONS {
            return Err(FilterError::new(
                pos,
                format!("the filter has more than {MAX_RESTRICTIONS} restrictions"),
            ));
        }
        let (field, ty) = self.resolve_field(&word, pos)?;
        // AIP-160's member restriction: a boolean field alone is the
        // restriction that it is true (`high_tech`, `NOT listed`).
        let ends_here = match self.peek() {
            None
            | Some(Token {
                kind: Kind::RParen, ..
            }) => true,
            Some(Token {
                kind: Kind::Word(w),
                ..
            }) => matches!(w.as_str(), "AND" | "OR"),
            Some(_) => false,
        };
        if ty == FieldType::Bool && ends_here {
            return Ok(Expr::Compare {
                field,
                op: CmpOp::Eq,
                value: Literal::Bool(true),
            });
        }
        let op_tok = self.expect_more("an operator after the field")?;
        match op_tok.kind {
            Kind::Colon => {
                // A map takes `:` whole (`labels:"key"`) or by entry
                // (`labels.key:"value"`).
                if !matches!(ty, FieldType::StringList | FieldType::StringMap) {
                    return Err(FilterError::new(
                        op_tok.pos,
                        format!(
                            "the has operator `:` applies to repeated fields and maps; `{word}` is neither"
                        ),
                    ));
                }
                let arg_tok = self.expect_more("a string or `*` after `:`")?;
                let arg = match arg_tok.kind {
                    Kind::Star => HasArg::Any,
                    Kind::Str(s) => HasArg::Value(s),
                    other => {
                        return Err(FilterError::new(
                            arg_tok.pos,
                            format!(
                                "expected a double-quoted string or `*` after `:`, found {other}"
                            ),
                        ));
                    }
                };
                Ok(Expr::Has { field, arg })
            }
            Kind::Op(op) => {
                let lit_tok = self.expect_more("a value after the operator")?;
                let value = check_literal(&word, ty, op, op_tok.pos, lit_tok)?;
                Ok(Expr::Compare { field, op, value })
            }
            other => Err(FilterError::new(
                op_tok.pos,
                format!("expected an operator (= != < <= > >= :) after `{word}`, found {other}"),
            )),
        }
    }

    fn resolve_field(&self, word: &str, pos: usize) -> Result<(FieldRef, FieldType), FilterError> {
        if let Some(ty) = self.schema.field_type(word) {
            return Ok((
                FieldRef {
                    path: word.to_string(),
                    key: None,
                },
                ty,
            ));
        }
        if let Some((map, key)) = word.split_once('.')
            && self.schema.field_type(map) == Some(FieldType::StringMap)
            && !key.is_empty()
        {
            return Ok((
                FieldRef {
                    path: map.to_string(),
                    key: Some(key.to_string()),
                },
                FieldType::StringMap,
            ));
        }
        let known: Vec<&str> = self.schema.filter_fields.iter().map(|(n, _)| *n).collect();
        Err(FilterError::new(
            pos,
            format!(
                "unknown field `{word}` for {}; filterable fields: {}",
                self.schema.resource,
                known.join(", ")
            ),
        ))
    }
}

fn check_literal(
    field: &str,
    ty: FieldType,
    op: CmpOp,
    op_pos: usize,
    tok: Token,
) -> Result<Literal, FilterError> {
    let mismatch = |expected: &str| {
        FilterError::new(
            tok.pos,
            format!("`{field}` compares with {expected}, found {}", tok.kind),
        )
    };
    let equality_only = |what: &str| {
        if matches!(op, CmpOp::Eq | CmpOp::Ne) {
            Ok(())
        } else {
            Err(FilterError::new(
                op_pos,
                format!("`{field}` is {what}: only = and != apply"),
            ))
        }
    };
    match ty {
        FieldType::String | FieldType::StringMap => match tok.kind {
            Kind::Str(s) => Ok(Literal::Str(s)),
            _ => Err(mismatch("a double-quoted string")),
        },
        FieldType::Int => match tok.kind {
            Kind::Int(i) => Ok(Literal::Int(i)),
            _ => Err(mismatch("an integer")),
        },
        FieldType::Bool => {
            equality_only("a boolean")?;
            match tok.kind {
                Kind::Word(ref w) if w == "true" => Ok(Literal::Bool(true)),
                Kind::Word(ref w) if w == "false" => Ok(Literal::Bool(false)),
                _ => Err(mismatch("true or false")),
            }
        }
        FieldType::Enum(names) => {
            equality_only("an enum")?;
            match tok.kind {
                Kind::Word(ref w) | Kind::Str(ref w) if names.contains(&w.as_str()) => {
                    Ok(Literal::Str(w.clone()))
                }
                _ => Err(mismatch(&format!("one of {}", names.join(", ")))),
            }
        }
        FieldType::StringList => Err(FilterError::new(
            op_pos,
            format!("`{field}` is a repeated field: use the has operator, e.g. {field}:\"value\""),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: Schema = Schema {
        resource: "company",
        filter_fields: &[
            ("display_name", FieldType::String),
            ("employees", FieldType::Int),
            ("high_tech", FieldType::Bool),
            (
                "kind",
                FieldType::Enum(&["PARK_KIND_SCIENCE_PARK", "PARK_KIND_INCUBATOR"]),
            ),
            ("sectors", FieldType::StringList),
            ("labels", FieldType::StringMap),
            ("location.city", FieldType::String),
        ],
        order_fields: &[],
    };

    fn err(text: &str) -> FilterError {
        Filter::parse(text, &SCHEMA).expect_err(text)
    }

    #[test]
    fn a_filter_of_exactly_the_largest_size_is_accepted() {
        let text = |len: usize| {
            let head = "display_name = \"";
            format!("{head}{}\"", "x".repeat(len - head.len() - 1))
        };
        let largest = text(MAX_FILTER_BYTES);
        assert_eq!(largest.len(), MAX_FILTER_BYTES);
        assert!(Filter::parse(&largest, &SCHEMA).is_ok());
        let over = text(MAX_FILTER_BYTES + 1);
        assert!(err(&over).message.contains("longer than"), "{over:.40}");
    }

    #[test]
    fn the_expression_is_there_unless_the_filter_is_empty() {
        assert_eq!(Filter::parse("", &SCHEMA).unwrap().expr(), None);
        let f = Filter::parse("employees > 1", &SCHEMA).unwrap();
        assert!(matches!(
            f.expr(),
            Some(Expr::Compare { op: CmpOp::Gt, .. })
        ));
    }

    /// Only a top-level `AND` conjunct `field = "value"` on the field
    /// itself (not a map key of it) narrows a scan.
    #[test]
    fn a_required_equality_is_on_the_field_itself_and_in_every_match() {
        let required = |text: &str, field: &str| {
            Filter::parse(text, &SCHEMA)
                .unwrap()
                .required_equality(field)
                .map(str::to_string)
        };
        assert_eq!(
            required(
                "display_name = \"a\" AND location.city = \"b\"",
                "location.city"
            ),
            Some("b".into())
        );
        assert_eq!(required("display_name = \"a\"", "location.city"), None);
        assert_eq!(required("labels.city = \"a\"", "labels"), None);
        assert_eq!(
            required(
                "display_name = \"a\" OR display_name = \"b\"",
                "display_name"
            ),
            None
        );
        assert_eq!(required("NOT display_name = \"a\"", "display_name"), None);
        assert_eq!(required("", "display_name"), None);
    }

    #[test]
    fn strings_take_every_escape_and_refuse_others_where_they_stand() {
        let parsed = |text: &str| Filter::parse(text, &SCHEMA).unwrap().to_string();
        for (escape, char) in [
            ("\\\"", '"'),
            ("\\\\", '\\'),
            ("\\n", '\n'),
            ("\\t", '\t'),
            ("\\r", '\r'),
        ] {
            let f = Filter::parse(&format!("display_name = \"a{escape}b\""), &SCHEMA).unwrap();
            let Some(Expr::Compare {
                value: Literal::Str(v),
                ..
            }) = f.expr()
            else {
                panic!("{escape}: {f:?}");
            };
            assert_eq!(v, &format!("a{char}b"), "{escape}");
            // The canonical form reads back to the same string.
            assert_eq!(
                parsed(&parsed(&format!("display_name = \"a{escape}b\""))),
                f.to_string()
            );
        }
        // `display_name = "a\q"`: the backslash is the 18th character.
        let e = err("display_name = \"a\\q\"");
        assert_eq!(e.position, 18, "{e:?}");
        assert!(e.message.contains("unknown escape"), "{e:?}");
    }

    #[test]
    fn numbers_start_with_a_digit_or_a_minus_before_one() {
        assert!(Filter::parse("employees > -3", &SCHEMA).is_ok());
        for text in ["employees > -x", "x1 = 1"] {
            let e = err(text);
            assert!(!e.message.contains("does not fit"), "{text}: {e:?}");
        }
    }

    /// Nesting is bounded by depth, not by how many groups there are.
    #[test]
    fn nesting_is_bounded_at_the_largest_depth() {
        let nested =
            |depth: usize| format!("{}employees > 1{}", "(".repeat(depth), ")".repeat(depth));
        assert!(Filter::parse(&nested(MAX_DEPTH), &SCHEMA).is_ok());
        assert!(err(&nested(MAX_DEPTH + 1)).message.contains("nests deeper"));
        let nots = |depth: usize| format!("{}employees > 1", "NOT ".repeat(depth));
        assert!(Filter::parse(&nots(MAX_DEPTH), &SCHEMA).is_ok());
        assert!(err(&nots(MAX_DEPTH + 1)).message.contains("nests deeper"));
        let siblings = vec!["(employees > 1)"; 2 * MAX_DEPTH].join(" AND ");
        assert!(Filter::parse(&siblings, &SCHEMA).is_ok());
    }

    #[test]
    fn restrictions_are_bounded_at_the_largest_number() {
        let many = |n: usize| vec!["employees > 1"; n].join(" AND ");
        assert!(Filter::parse(&many(MAX_RESTRICTIONS), &SCHEMA).is_ok());
        assert!(
            err(&many(MAX_RESTRICTIONS + 1))
                .message
                .contains("more than")
        );
    }

    #[test]
    fn a_keyword_is_not_a_field() {
        for text in ["AND = 1", "OR = 1"] {
            assert!(
                err(text).message.contains("expected a field name"),
                "{text}"
            );
        }
    }

    #[test]
    fn has_applies_to_repeated_fields_and_maps_only() {
        for ok in [
            "sectors:\"ai\"",
            "labels:\"source\"",
            "labels.source:\"x\"",
            "labels:*",
        ] {
            assert!(Filter::parse(ok, &SCHEMA).is_ok(), "{ok}");
        }
        for bad in ["display_name:\"x\"", "employees:\"1\"", "high_tech:*"] {
            assert!(
                err(bad)
                    .message
                    .contains("applies to repeated fields and maps"),
                "{bad}"
            );
        }
    }

    /// AIP-160 member restrictions: a boolean field alone means it is true.
    #[test]
    fn a_bare_boolean_field_is_the_restriction_that_it_is_true() {
        let f = |text: &str| Filter::parse(text, &SCHEMA).map(|f| f.to_string());
        assert_eq!(f("high_tech").unwrap(), "high_tech = true");
        assert_eq!(f("NOT high_tech").unwrap(), "NOT high_tech = true");
        assert_eq!(
            f("high_tech AND employees > 1").unwrap(),
            "(high_tech = true AND employees > 1)"
        );
        assert_eq!(
            f("(high_tech) OR employees > 1").unwrap(),
            "(high_tech = true OR employees > 1)"
        );
        // The same filter as spelled out: a page token of one is valid for
        // the other.
        assert_eq!(f("high_tech"), f("high_tech = true"));
        // Other fields still need an operator.
        assert!(err("employees").message.contains("expected an operator"));
        assert!(
            err("employees AND high_tech")
                .message
                .contains("expected an operator")
        );
        assert!(err("high_tech 1").message.contains("expected an operator"));
    }

    #[test]
    fn booleans_are_true_or_false() {
        let f = |text: &str| Filter::parse(text, &SCHEMA).map(|f| f.to_string());
        assert_eq!(f("high_tech = false").unwrap(), "high_tech = false");
        assert_eq!(f("high_tech = true").unwrap(), "high_tech = true");
        assert!(err("high_tech = maybe").message.contains("true or false"));
    }

    #[test]
    fn a_lone_bang_is_not_an_operator() {
        let e = err("employees ! 3");
        assert_eq!(e.position, 11, "{e:?}");
        assert!(Filter::parse("employees != 3", &SCHEMA).is_ok());
    }

    /// What the parser found where it expected something else is named
    /// as the user wrote it.
    #[test]
    fn unexpected_tokens_are_named() {
        for (text, named) in [
            ("employees > 1 (", "found `(`"),
            ("employees > 1 )", "found `)`"),
            ("employees > 1 \"x\"", "found the string \"x\""),
            ("employees > 1 7", "found the number 7"),
            ("employees > 1 high_tech", "found `high_tech`"),
            ("employees > 1 :", "found `:`"),
            ("employees > 1 *", "found `*`"),
            ("employees > 1 >=", "found `>=`"),
        ] {
            let e = err(text);
            assert!(e.message.contains(named), "{text}: {}", e.message);
        }
    }

    #[test]
    fn or_binds_tighter_than_and() {
        let f = Filter::parse(
            "employees > 1 AND high_tech = true OR employees < 0",
            &SCHEMA,
        )
        .unwrap();
        assert_eq!(
            f.to_string(),
            "(employees > 1 AND (high_tech = true OR employees < 0))"
        );
    }

    #[test]
    fn errors_name_the_position() {
        assert_eq!(err("employees >").position, 12);
        assert_eq!(err("nope = 1").position, 1);
        assert_eq!(err("employees = \"x\"").position, 13);
        assert_eq!(err("(employees = 1").position, 15);
        assert_eq!(err("employees = 1 employees = 2").position, 15);
        assert_eq!(err("display_name = \"x").position, 16);
        assert_eq!(err("sectors = \"a\"").position, 9);
        assert_eq!(err("high_tech > true").position, 11);
        assert_eq!(err("employees = 99999999999999999999").position, 13);
        assert_eq!(err("employees ~ 1").position, 11);
        assert!(err("nope = 1").message.contains("unknown field `nope`"));
    }

    #[test]
    fn depth_and_size_are_bounded() {
        let deep = format!("{}employees = 1{}", "(".repeat(40), ")".repeat(40));
        assert!(err(&deep).message.contains("nests deeper"));
        let nots = format!("{}employees = 1", "NOT ".repeat(40));
        assert!(err(&nots).message.contains("nests deeper"));
        let wide = vec!["employees = 1"; 300].join(" OR ");
        assert!(err(&wide).message.contains("restrictions"));
        assert!(
            err(&"x".repeat(MAX_FILTER_BYTES + 1))
                .message
                .contains("longer")
        );
    }

    #[test]
    fn required_equality_finds_top_level_conjuncts_only() {
        let f = Filter::parse("display_name = \"a\" AND employees > 3", &SCHEMA).unwrap();
        assert_eq!(f.required_equality("display_name"), Some("a"));
        let f = Filter::parse("display_name = \"a\" OR employees > 3", &SCHEMA).unwrap();
        assert_eq!(f.required_equality("display_name"), None);
        let f = Filter::parse("NOT display_name = \"a\"", &SCHEMA).unwrap();
        assert_eq!(f.required_equality("display_name"), None);
    }

    #[test]
    fn enum_values_bare_or_quoted() {
        let a = Filter::parse("kind = PARK_KIND_INCUBATOR", &SCHEMA).unwrap();
        let b = Filter::parse("kind = \"PARK_KIND_INCUBATOR\"", &SCHEMA).unwrap();
        assert_eq!(a, b);
        assert!(err("kind = PARK_KIND_NOPE").message.contains("one of"));
    }
}
