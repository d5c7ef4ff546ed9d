//! Literals in WHERE: each must fit the type of the field it is compared with, or the query
//! fails with Salesforce's message for that type.

use std::borrow::Cow;

use common::sfid::SalesforceId;

use super::Parser;
use crate::data::{FieldDef, FieldType, Value};
use crate::soql::SoqlError;
use crate::soql::lexer::Tok;

impl Parser<'_> {
    /// Reads one literal and checks that it fits the field's type.
    pub(super) fn literal(&mut self, def: &FieldDef) -> Result<Value, SoqlError> {
        let t = self.next();
        let ty = def.ty;
        let type_error = || {
            let (want, quotes) = match ty {
                FieldType::DateTime => ("dateTime", "should not"),
                FieldType::Date => ("date", "should not"),
                FieldType::Boolean => ("boolean", "should not"),
                FieldType::Int => ("int", "should not"),
                FieldType::Double | FieldType::Currency | FieldType::Percent => {
                    ("double", "should not")
                }
                FieldType::Id | FieldType::Reference => ("id", "should"),
                _ => ("string", "should"),
            };
            SoqlError::at(
                "INVALID_FIELD",
                self.soql,
                t.pos,
                format!(
                    "value of filter criterion for field '{}' must be of type {want} and {quotes} be enclosed in quotes",
                    def.name
                ),
            )
        };
        Ok(match t.tok {
            Tok::Word(w) if w.eq_ignore_ascii_case("null") => Value::Null,
            Tok::Word(w) if ty == FieldType::Boolean && w.eq_ignore_ascii_case("true") => {
                Value::Bool(true)
            }
            Tok::Word(w) if ty == FieldType::Boolean && w.eq_ignore_ascii_case("false") => {
                Value::Bool(false)
            }
            Tok::Str(s) if ty.is_text() => Value::Text(Cow::Owned(s)),
            Tok::Str(s) if matches!(ty, FieldType::Id | FieldType::Reference) => {
                let id = SalesforceId::parse(&s).map_err(|_| {
                    SoqlError::at(
                        "INVALID_QUERY_FILTER_OPERATOR",
                        self.soql,
                        t.pos,
                        format!("invalid ID field: {s}"),
                    )
                })?;
                Value::Id(id)
            }
            Tok::Num(n) if ty == FieldType::Int && !n.contains('.') => {
                Value::Int(n.parse().map_err(|_| type_error())?)
            }
            Tok::Num(n)
                if matches!(
                    ty,
                    FieldType::Int | FieldType::Double | FieldType::Currency | FieldType::Percent
                ) =>
            {
                Value::Number(n.parse().map_err(|_| type_error())?)
            }
            Tok::Date(d) if ty == FieldType::Date => Value::Date(d),
            Tok::DateTime(ms) if ty == FieldType::DateTime => Value::DateTime(ms),
            Tok::Word(_) | Tok::Str(_) | Tok::Num(_) | Tok::Date(_) | Tok::DateTime(_) => {
                return Err(type_error());
            }
            _ => {
                return Err(SoqlError::malformed(
                    self.soql,
                    t.pos,
                    format!("unexpected token: {}", t.text),
                ));
            }
        })
    }
}
