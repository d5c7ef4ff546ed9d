//! Recursive-descent parser from tokens to a resolved [`Query`]: field names are checked
//! against the object's metadata and literals against the field types, with Salesforce's
//! error codes and messages.
//!
//! This file holds the grammar (SELECT … FROM … WHERE … ORDER BY … LIMIT … OFFSET, and the
//! WHERE expressions); names resolve in `resolve` and literals are checked in `literal`.

mod literal;
mod resolve;

use super::lexer::{Tok, Token, tokenize};
use super::{Expr, FieldRef, OrderKey, Query, Selection, SoqlError};
use crate::data::{FieldDef, ObjectDef, Schema};
use resolve::pins;

/// Parses and resolves one SOQL statement against `schema` (hidden fields do not resolve).
///
/// # Errors
/// `MALFORMED_QUERY`, `INVALID_TYPE`, `INVALID_FIELD` or `INVALID_QUERY_FILTER_OPERATOR`,
/// worded as Salesforce words them.
pub fn parse(soql: &str, schema: &Schema) -> Result<Query, SoqlError> {
    let tokens = tokenize(soql)?;
    Parser {
        soql,
        schema,
        tokens,
        at: 0,
        object: None,
    }
    .query()
}

struct Parser<'a> {
    soql: &'a str,
    schema: &'a Schema,
    tokens: Vec<Token>,
    at: usize,
    object: Option<crate::data::ObjectKind>,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> &Token {
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        self.at += 1;
        t
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(&self.peek().tok, Tok::Word(w) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let hit = self.is_kw(kw);
        if hit {
            self.at += 1;
        }
        hit
    }

    fn unexpected(&self) -> SoqlError {
        let t = self.peek();
        SoqlError::malformed(self.soql, t.pos, format!("unexpected token: {}", t.text))
    }

    fn expect_kw(&mut self, kw: &str) -> Result<(), SoqlError> {
        if self.eat_kw(kw) {
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn expect(&mut self, tok: &Tok) -> Result<(), SoqlError> {
        if &self.peek().tok == tok {
            self.at += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn word(&mut self) -> Result<(String, usize), SoqlError> {
        match &self.peek().tok {
            Tok::Word(w) if !is_reserved(w) => {
                let r = (w.clone(), self.peek().pos);
                self.at += 1;
                Ok(r)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn object(&self) -> &'a ObjectDef {
        self.schema.def(
            self.object
                .expect("the FROM object is resolved before any field"),
        )
    }

    fn query(mut self) -> Result<Query, SoqlError> {
        self.expect_kw("SELECT")?;
        let count = self.is_kw("COUNT")
            && self.tokens.get(self.at + 1).map(|t| &t.tok) == Some(&Tok::LParen);
        let mut raw_fields = Vec::new();
        if count {
            self.at += 1;
            self.expect(&Tok::LParen)?;
            self.expect(&Tok::RParen)?;
        } else {
            loop {
                raw_fields.push(self.word()?);
                if self.peek().tok != Tok::Comma {
                    break;
                }
                self.at += 1;
            }
        }
        self.expect_kw("FROM")?;
        let (name, pos) = self.word()?;
        let Some(object) = self.schema.object(&name) else {
            return Err(SoqlError::at(
                "INVALID_TYPE",
                self.soql,
                pos,
                format!(
                    "sObject type '{name}' is not supported. If you are attempting to use a \
                     custom object, be sure to append the '__c' after the entity name. Please \
                     reference your WSDL or the describe call for the appropriate names."
                ),
            ));
        };
        self.object = Some(object);
        let def = self.object();
        let (selection, columns) = if count {
            (Selection::Count, Vec::new())
        } else {
            let (items, columns) = self.select_items(&raw_fields)?;
            (Selection::Fields(items), columns)
        };
        let filter = if self.eat_kw("WHERE") {
            Some(self.or_expr()?)
        } else {
            None
        };
        let mut order = Vec::new();
        if self.eat_kw("ORDER") {
            self.expect_kw("BY")?;
            loop {
                order.push(self.order_key()?);
                if self.peek().tok != Tok::Comma {
                    break;
                }
                self.at += 1;
            }
        }
        let limit = if self.eat_kw("LIMIT") {
            Some(self.count_literal()?)
        } else {
            None
        };
        let offset = if self.eat_kw("OFFSET") {
            Some(self.count_literal()?)
        } else {
            None
        };
        if self.peek().tok != Tok::Eof {
            return Err(self.unexpected());
        }
        if let Some(restriction) = def.restriction
            && !filter
                .as_ref()
                .is_some_and(|f| pins(def, f, restriction.fields))
        {
            // Salesforce sends this one without the caret layout (a REST body recorded in a
            // public tool's README shows it as is).
            return Err(SoqlError {
                code: "MALFORMED_QUERY",
                message: restriction.message.to_owned(),
            });
        }
        Ok(Query {
            object,
            selection,
            columns,
            filter,
            order,
            limit,
            offset,
        })
    }

    fn count_literal(&mut self) -> Result<u32, SoqlError> {
        match &self.peek().tok {
            Tok::Num(n) => {
                let n = n.parse().map_err(|_| self.unexpected())?;
                self.at += 1;
                Ok(n)
            }
            _ => Err(self.unexpected()),
        }
    }

    /// A field path where the field must allow `use_` ("sorted", "filtered"), which `allows`
    /// tells.
    fn field_for(
        &mut self,
        use_: &str,
        allows: fn(&FieldDef) -> bool,
    ) -> Result<(FieldRef, &'a FieldDef), SoqlError> {
        let (path, pos) = self.word()?;
        let field = self.resolve(&path, pos)?;
        let def = self.field_def(field);
        if !allows(def) {
            return Err(SoqlError::at(
                "INVALID_FIELD",
                self.soql,
                pos,
                format!("field '{}' can not be {use_} in a query call", def.name),
            ));
        }
        Ok((field, def))
    }

    fn order_key(&mut self) -> Result<OrderKey, SoqlError> {
        let (field, _) = self.field_for("sorted", |f| f.sortable)?;
        let descending = if self.eat_kw("DESC") {
            true
        } else {
            self.eat_kw("ASC");
            false
        };
        // Salesforce puts nulls first by default, whatever the direction.
        let mut nulls_last = false;
        if self.eat_kw("NULLS") {
            if self.eat_kw("LAST") {
                nulls_last = true;
            } else {
                self.expect_kw("FIRST")?;
            }
        }
        Ok(OrderKey {
            field,
            descending,
            nulls_last,
        })
    }

    fn or_expr(&mut self) -> Result<Expr, SoqlError> {
        self.chain("OR", Self::and_expr, Expr::Or)
    }

    fn and_expr(&mut self) -> Result<Expr, SoqlError> {
        self.chain("AND", Self::unary, Expr::And)
    }

    /// `term (keyword term)*`: a single term as it is, more than one joined by `join`.
    fn chain(
        &mut self,
        keyword: &str,
        term: fn(&mut Self) -> Result<Expr, SoqlError>,
        join: fn(Vec<Expr>) -> Expr,
    ) -> Result<Expr, SoqlError> {
        let mut terms = vec![term(self)?];
        while self.eat_kw(keyword) {
            terms.push(term(self)?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            join(terms)
        })
    }

    fn unary(&mut self) -> Result<Expr, SoqlError> {
        if self.eat_kw("NOT") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek().tok == Tok::LParen {
            self.at += 1;
            let e = self.or_expr()?;
            self.expect(&Tok::RParen)?;
            return Ok(e);
        }
        self.condition()
    }

    fn condition(&mut self) -> Result<Expr, SoqlError> {
        let (field, def) = self.field_for("filtered", |f| f.filterable)?;
        let negated = self.is_kw("NOT")
            && matches!(self.tokens.get(self.at + 1).map(|t| &t.tok), Some(Tok::Word(w)) if w.eq_ignore_ascii_case("IN"));
        if negated {
            self.at += 1;
        }
        if self.eat_kw("IN") {
            self.expect(&Tok::LParen)?;
            let mut values = Vec::new();
            loop {
                values.push(self.literal(def)?);
                if self.peek().tok != Tok::Comma {
                    break;
                }
                self.at += 1;
            }
            self.expect(&Tok::RParen)?;
            return Ok(Expr::In {
                field,
                values,
                negated,
            });
        }
        if negated {
            return Err(self.unexpected());
        }
        if self.eat_kw("LIKE") {
            let t = self.next();
            return match t.tok {
                Tok::Str(pattern) if def.ty.is_text() => Ok(Expr::Like { field, pattern }),
                _ => Err(SoqlError::at(
                    "INVALID_FIELD",
                    self.soql,
                    t.pos,
                    format!("invalid operator on {} field: LIKE", def.ty.api_name()),
                )),
            };
        }
        let op = match self.peek().tok {
            Tok::Op(op) => op,
            _ => return Err(self.unexpected()),
        };
        self.at += 1;
        let value = self.literal(def)?;
        Ok(Expr::Cmp { field, op, value })
    }
}

/// Keywords that cannot stand where a field or object name is expected.
fn is_reserved(w: &str) -> bool {
    const RESERVED: &[&str] = &[
        "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "ORDER", "BY", "LIMIT", "OFFSET", "ASC",
        "DESC", "NULLS", "IN", "LIKE", "GROUP", "HAVING",
    ];
    RESERVED.iter().any(|r| r.eq_ignore_ascii_case(w))
}
