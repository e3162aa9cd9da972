"""Signals the datastore sends when records change.

`record_changed` is sent synchronously by the writing service in `datastore.services`, inside its
transaction, once per changed record (bulk writes included), with:

- `kind`: "created", "updated" or "deleted";
- `record`: the record as `selectors.record_to_dict` gives it (after the change; for a delete, its last state);
- `before`: the record before an update, else None;
- `data_type`: the data type's name.

It is not deferred with `transaction.on_commit` here, because only the receiver knows what to do
with a rolled-back change: receivers (record triggers in `scheduler`) collect per transaction and
act on commit themselves, so a write that rolls back starts nothing.
"""
from django.dispatch import Signal

record_changed = Signal()
