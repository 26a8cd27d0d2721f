//! The part of the Okta Expression Language that Okta's built-in TELUS app mappings use:
//! `user.<attr>` and `appuser.<attr>`, string literals, `+`, parentheses, and the null guard
//! `(appuser.X != null ? appuser.X : "")`. Anything else (functions, other conditions,
//! `getManagerUser`) is refused, naming the construct: it is never guessed. Pure.
//!
//! Okta's language is based on Spring's SpEL, whose `+` turns a null into the text "null"
//! (`"#" + null` is `"#null"`). A translated template renders a missing field as the empty
//! string instead (DESIGN, the template rule); the null guard exists to get exactly that.

/// Whose attribute a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Namespace {
    /// `user.X`: the Okta user's profile.
    User,
    /// `appuser.X`: the app user's profile (here, the TELUS side).
    AppUser,
}

/// One piece of a concatenation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Attr(Namespace, String),
    Lit(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Name(String),
    Str(String),
    Plus,
    Open,
    Close,
    Question,
    Colon,
    NotEq,
    Null,
    /// Any other character: an operator or punctuation outside the subset.
    Other(char),
}

fn tokens(expr: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = expr.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '+' => {
                out.push(Token::Plus);
                i += 1;
            }
            '(' => {
                out.push(Token::Open);
                i += 1;
            }
            ')' => {
                out.push(Token::Close);
                i += 1;
            }
            '?' => {
                out.push(Token::Question);
                i += 1;
            }
            ':' => {
                out.push(Token::Colon);
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                out.push(Token::NotEq);
                i += 2;
            }
            '"' | '\'' => {
                let quote = c;
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("a string literal is not closed".into()),
                        Some(&q) if q == quote => {
                            // SpEL doubles a quote to escape it.
                            if chars.get(i + 1) == Some(&quote) {
                                s.push(quote);
                                i += 2;
                            } else {
                                i += 1;
                                break;
                            }
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                out.push(Token::Str(s));
            }
            c if c.is_alphanumeric() || c == '_' || c == '$' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.' | '$'))
                {
                    i += 1;
                }
                let name: String = chars[start..i].iter().collect();
                out.push(match name.as_str() {
                    "null" => Token::Null,
                    _ => Token::Name(name),
                });
            }
            other => {
                out.push(Token::Other(other));
                i += 1;
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn expect(&mut self, want: Token, what: &str) -> Result<(), String> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            Some(t) => Err(format!("expected {what}, found {}", shown(&t))),
            None => Err(format!("expected {what}, found the end")),
        }
    }

    /// `term ('+' term)*`
    fn concat(&mut self) -> Result<Vec<Piece>, String> {
        let mut pieces = self.term()?;
        while self.peek() == Some(&Token::Plus) {
            self.next();
            pieces.extend(self.term()?);
        }
        Ok(pieces)
    }

    fn term(&mut self) -> Result<Vec<Piece>, String> {
        match self.next() {
            Some(Token::Str(s)) => Ok(vec![Piece::Lit(s)]),
            Some(Token::Name(n)) => {
                if self.peek() == Some(&Token::Open) {
                    return Err(format!("the function call {n}(…) is not translated"));
                }
                attr(&n).map(|a| vec![a])
            }
            Some(Token::Open) => {
                let inner = self.concat()?;
                if self.peek() == Some(&Token::NotEq) {
                    return self.guard(inner);
                }
                self.expect(Token::Close, "`)`")?;
                Ok(inner)
            }
            Some(t) => Err(format!("{} cannot start a value", shown(&t))),
            None => Err("the expression ends too early".into()),
        }
    }

    /// The rest of `(X != null ? X : "")`, with `X` already read: renders as `X`, a missing
    /// `X` as the empty string.
    fn guard(&mut self, tested: Vec<Piece>) -> Result<Vec<Piece>, String> {
        self.next();
        if self.next() != Some(Token::Null) {
            return Err("a condition other than `X != null` is not translated".into());
        }
        self.expect(Token::Question, "`?`")?;
        let then = self.concat()?;
        self.expect(Token::Colon, "`:`")?;
        let otherwise = self.concat()?;
        self.expect(Token::Close, "`)`")?;
        match (tested.as_slice(), otherwise.as_slice()) {
            ([Piece::Attr(..)], [Piece::Lit(e)]) if e.is_empty() && then == tested => Ok(then),
            _ => Err(
                "a condition other than the null guard `(X != null ? X : \"\")` is not translated"
                    .into(),
            ),
        }
    }
}

fn shown(t: &Token) -> String {
    match t {
        Token::Name(n) => format!("`{n}`"),
        Token::Str(s) => format!("\"{s}\""),
        Token::Plus => "`+`".into(),
        Token::Open => "`(`".into(),
        Token::Close => "`)`".into(),
        Token::Question => "`?`".into(),
        Token::Colon => "`:`".into(),
        Token::NotEq => "`!=`".into(),
        Token::Null => "`null`".into(),
        Token::Other(c) => format!("the operator {c:?}"),
    }
}

fn attr(name: &str) -> Result<Piece, String> {
    let (ns, rest) = match name.split_once('.') {
        Some(("user", rest)) => (Namespace::User, rest),
        Some(("appuser", rest)) => (Namespace::AppUser, rest),
        _ => return Err(format!("the name `{name}` is not user.X or appuser.X")),
    };
    if rest.is_empty()
        || rest.contains('.')
        || !rest.chars().all(|c| c.is_alphanumeric() || c == '_')
    {
        return Err(format!("the name `{name}` is not user.X or appuser.X"));
    }
    Ok(Piece::Attr(ns, rest.to_string()))
}

/// Parses an expression of the subset into its concatenated pieces, or says which construct
/// is outside it.
pub fn parse(expr: &str) -> Result<Vec<Piece>, String> {
    let mut p = Parser {
        tokens: tokens(expr)?,
        at: 0,
    };
    if p.tokens.is_empty() {
        return Err("the expression is empty".into());
    }
    let pieces = p.concat()?;
    match p.next() {
        None => Ok(pieces),
        Some(t) => Err(format!(
            "{} after a complete value is not translated",
            shown(&t)
        )),
    }
}

/// The TELUS field an attribute of Okta's built-in TELUS app profile is (Okta's guide
/// "Configuring Provisioning for TELUS Business Connect"); `None` for one this tool cannot
/// name.
pub fn telus_field_of_app_attr(name: &str) -> Option<&'static str> {
    Some(match name {
        "firstName" => "contact.firstName",
        "lastName" => "contact.lastName",
        "email" => "contact.email",
        "mobilePhone" => "contact.mobilePhone",
        "street" => "contact.businessAddress.street",
        "city" => "contact.businessAddress.city",
        "state" => "contact.businessAddress.state",
        "zip" => "contact.businessAddress.zip",
        "country" => "contact.businessAddress.country",
        "department" => "contact.department",
        "directNumber" => "directNumber",
        "extensionNumber" => "extensionNumber",
        _ => return None,
    })
}

/// An app → Okta mapping's expression as a row's TELUS side: one field, or a template of
/// fields and literals (`"{directNumber}#{extensionNumber}"`). `Err` names what is not
/// translated.
pub fn telus_side_of(expr: &str) -> Result<String, String> {
    let pieces = parse(expr)?;
    let mut out = String::new();
    let fields = pieces
        .iter()
        .filter(|p| matches!(p, Piece::Attr(..)))
        .count();
    for p in &pieces {
        match p {
            Piece::Attr(Namespace::AppUser, a) => {
                let field = telus_field_of_app_attr(a).ok_or_else(|| {
                    format!("the app attribute `appuser.{a}` has no known TELUS field")
                })?;
                match pieces.len() {
                    1 => return Ok(field.to_string()),
                    _ => out.push_str(&format!("{{{field}}}")),
                }
            }
            Piece::Attr(Namespace::User, a) => {
                return Err(format!(
                    "`user.{a}` in a mapping into Okta is not translated"
                ));
            }
            Piece::Lit(s) if s.contains(['{', '}']) => {
                return Err(format!(
                    "the literal \"{s}\" holds a brace, which a template cannot"
                ));
            }
            Piece::Lit(s) => out.push_str(s),
        }
    }
    if fields == 0 {
        return Err("a constant is not a mapping this tool syncs".into());
    }
    Ok(out)
}

/// An Okta → app mapping's expression as the Okta attribute it pushes: only `user.X`
/// alone (a row maps one Okta attribute to one TELUS field).
pub fn okta_attr_of(expr: &str) -> Result<String, String> {
    match parse(expr)?.as_slice() {
        [Piece::Attr(Namespace::User, a)] => Ok(a.clone()),
        [Piece::Attr(Namespace::AppUser, a)] => {
            Err(format!("`appuser.{a}` in a mapping from Okta is not translated"))
        }
        _ => Err("a combination of values pushed into one field is not translated (a row maps one Okta attribute)".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_accepted_form_translates() {
        let cases: [(&str, Result<&str, ()>); 3] = [
            ("user.firstName", Ok("firstName")),
            ("  user.department ", Ok("department")),
            ("(user.city)", Ok("city")),
        ];
        for (expr, want) in cases {
            assert_eq!(okta_attr_of(expr).ok().as_deref(), want.ok(), "{expr}");
        }
        let sides = [
            ("appuser.email", "contact.email"),
            ("appuser.zip", "contact.businessAddress.zip"),
            (
                r##"(appuser.directNumber != null ? appuser.directNumber : "") + "#" + appuser.extensionNumber"##,
                "{directNumber}#{extensionNumber}",
            ),
            (
                r#"appuser.firstName + ' ' + appuser.lastName"#,
                "{contact.firstName} {contact.lastName}",
            ),
            (r#"("x" + appuser.extensionNumber)"#, "x{extensionNumber}"),
            (
                r#""it""s" + appuser.city"#,
                "it\"s{contact.businessAddress.city}",
            ),
        ];
        for (expr, want) in sides {
            assert_eq!(telus_side_of(expr).as_deref(), Ok(want), "{expr}");
        }
    }

    #[test]
    fn anything_else_is_refused_naming_the_construct() {
        let cases = [
            (
                "String.substringBefore(user.email, \"@\")",
                "function call String.substringBefore",
            ),
            (
                "getManagerUser(\"active_directory\").email",
                "function call getManagerUser",
            ),
            (
                "user.status == \"ACTIVE\" ? user.email : \"\"",
                "operator '='",
            ),
            ("(user.x != null ? user.y : \"\")", "null guard"),
            (
                "(user.x != \"a\" ? user.x : \"\")",
                "other than `X != null`",
            ),
            ("user.manager.email", "not user.X or appuser.X"),
            ("source.login", "not user.X or appuser.X"),
            ("\"unclosed", "not closed"),
            ("user.a user.b", "after a complete value"),
            ("", "empty"),
            ("user.email + user.login", "combination"),
            ("user.a - user.b", "operator '-'"),
        ];
        for (expr, needle) in cases {
            let err = okta_attr_of(expr).unwrap_err();
            assert!(err.contains(needle), "{expr}: {err}");
        }
        assert!(
            telus_side_of("appuser.nickName")
                .unwrap_err()
                .contains("appuser.nickName")
        );
        assert!(
            telus_side_of("\"constant\"")
                .unwrap_err()
                .contains("constant")
        );
        assert!(
            telus_side_of("user.firstName")
                .unwrap_err()
                .contains("user.firstName")
        );
    }
}
