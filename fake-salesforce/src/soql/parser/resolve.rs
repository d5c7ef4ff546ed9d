//! Name resolution: `Field`, `Object.Field` and `Relationship.Field` to fields of the FROM
//! object or of a parent, checked against what the integration user may see; and the object's
//! own rule on queries (ContentDocumentLink's required filter).

use super::Parser;
use crate::data::{FieldDef, ObjectDef};
use crate::soql::{Expr, FieldRef, Op, SelectItem, SoqlError};

impl<'a> Parser<'a> {
    /// The nested select list REST renders, and the flat column list in SELECT order.
    pub(super) fn select_items(
        &self,
        raw: &[(String, usize)],
    ) -> Result<(Vec<SelectItem>, Vec<FieldRef>), SoqlError> {
        let mut items: Vec<SelectItem> = Vec::new();
        let mut seen = Vec::new();
        for (path, pos) in raw {
            let field = self.resolve(path, *pos)?;
            if seen.contains(&field) {
                return Err(SoqlError::malformed(
                    self.soql,
                    *pos,
                    format!("duplicate field selected: {path}"),
                ));
            }
            seen.push(field);
            match field {
                FieldRef::Own(f) => items.push(SelectItem::Field(f)),
                FieldRef::Parent { via, field } => {
                    let existing = items.iter_mut().find_map(|item| match item {
                        SelectItem::Parent { via: v, fields } if *v == via => Some(fields),
                        _ => None,
                    });
                    match existing {
                        Some(fields) => fields.push(field),
                        None => items.push(SelectItem::Parent {
                            via,
                            fields: vec![field],
                        }),
                    }
                }
            }
        }
        Ok((items, seen))
    }

    /// Resolves `Field`, `Object.Field` or `Relationship.Field` on the FROM object.
    pub(super) fn resolve(&self, path: &str, pos: usize) -> Result<FieldRef, SoqlError> {
        let object = self.object();
        let mut parts: Vec<&str> = path.split('.').collect();
        if parts.len() > 1 && parts[0].eq_ignore_ascii_case(object.name) {
            parts.remove(0);
        }
        match parts.as_slice() {
            [name] => object
                .field_index(name)
                .map(FieldRef::Own)
                .ok_or_else(|| SoqlError::no_such_column(self.soql, pos, name, object.name)),
            [relationship, name] => {
                let bad_relationship = || {
                    SoqlError::at(
                        "INVALID_FIELD",
                        self.soql,
                        pos,
                        format!(
                            "Didn't understand relationship '{relationship}' in field path. If \
                             you are attempting to use a custom relationship, be sure to append \
                             the '__r' after the custom relationship name. Please reference your \
                             WSDL or the describe call for the appropriate names."
                        ),
                    )
                };
                let via = object
                    .relationship(relationship)
                    .ok_or_else(bad_relationship)?;
                let parent = self
                    .schema
                    .def(object.fields[via].target.ok_or_else(bad_relationship)?);
                let field = parent
                    .field_index(name)
                    .ok_or_else(|| SoqlError::no_such_column(self.soql, pos, name, parent.name))?;
                Ok(FieldRef::Parent { via, field })
            }
            _ => Err(SoqlError::at(
                "INVALID_FIELD",
                self.soql,
                pos,
                format!(
                    "Didn't understand relationship '{}' in field path.",
                    parts[1]
                ),
            )),
        }
    }

    pub(super) fn field_def(&self, field: FieldRef) -> &'a FieldDef {
        let object = self.object();
        match field {
            FieldRef::Own(f) => &object.fields[f],
            FieldRef::Parent { via, field } => {
                let parent = object.fields[via]
                    .target
                    .expect("resolve only builds Parent through served references");
                &self.schema.def(parent).fields[field]
            }
        }
    }
}

/// Whether `filter` pins one of `fields` of `def` with `=` or `IN` in a conjunct, as
/// Salesforce's implementation restrictions (ContentDocumentLink's) require.
pub(super) fn pins(def: &ObjectDef, filter: &Expr, fields: &[&str]) -> bool {
    let pinned = |f: &FieldRef| match f {
        FieldRef::Own(i) => fields
            .iter()
            .any(|n| def.fields[*i].name.eq_ignore_ascii_case(n)),
        FieldRef::Parent { .. } => false,
    };
    match filter {
        Expr::And(terms) => terms.iter().any(|t| pins(def, t, fields)),
        Expr::Cmp {
            field,
            op: Op::Eq,
            value,
        } => pinned(field) && !value.is_null(),
        Expr::In {
            field,
            negated: false,
            ..
        } => pinned(field),
        _ => false,
    }
}
