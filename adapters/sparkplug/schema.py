"""The Sparkplug B payload messages, built at run time from the specification's field numbers.

Sparkplug 3.0 §6.4 defines the payload as a protobuf (proto2) schema. Its field numbers and
types are facts; we write them down here as a table and make the message classes from it with
Google's `protobuf` (a `FileDescriptorProto` in a private `DescriptorPool`): no .proto file, no
generated code, no build step. The private pool cannot clash with another package's copy of the
schema in the default pool. The four empty `*ValueExtension` holders are left out: such a value
stays an unknown field, and its metric has no value (counted in `skipped_type`).

The messages it makes are decoded in payload.py and read through its typed `Metric`, there and
in scope.py only.
"""

from __future__ import annotations

from functools import cache
from typing import Any

# protobuf ships no type hints (types-protobuf is not a dependency): its objects are read
# through payload.Metric.
from google.protobuf import (  # type: ignore[import-untyped]
    descriptor_pb2,
    descriptor_pool,
    message_factory,
)

_F = descriptor_pb2.FieldDescriptorProto
_OPT, _REP = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
U32, U64, FLOAT, DOUBLE, BOOL, STRING, BYTES, MESSAGE = (
    _F.TYPE_UINT32,
    _F.TYPE_UINT64,
    _F.TYPE_FLOAT,
    _F.TYPE_DOUBLE,
    _F.TYPE_BOOL,
    _F.TYPE_STRING,
    _F.TYPE_BYTES,
    _F.TYPE_MESSAGE,
)
PACKAGE = "shopfloor.sparkplug.b"  # ours: nothing on the wire carries it
ONEOF = "value"  # each message with value fields has one oneof

# (field, number, type, repeated, message type or None, in the `value` oneof)
Row = tuple[str, int, int, bool, str | None, bool]


def _scalars(first: int) -> list[Row]:
    """The six value fields Metric, PropertyValue, Parameter and DataSetValue share, in order."""
    kinds = [
        ("int_value", U32),
        ("long_value", U64),
        ("float_value", FLOAT),
        ("double_value", DOUBLE),
        ("boolean_value", BOOL),
        ("string_value", STRING),
    ]
    return [(name, first + i, kind, False, None, True) for i, (name, kind) in enumerate(kinds)]


# Message path -> fields. Parents come before their nested messages.
MESSAGES: dict[str, list[Row]] = {
    "Payload": [
        ("timestamp", 1, U64, False, None, False),
        ("metrics", 2, MESSAGE, True, "Payload.Metric", False),
        ("seq", 3, U64, False, None, False),
        ("uuid", 4, STRING, False, None, False),
        ("body", 5, BYTES, False, None, False),
    ],
    "Payload.Template": [
        ("version", 1, STRING, False, None, False),
        ("metrics", 2, MESSAGE, True, "Payload.Metric", False),
        ("parameters", 3, MESSAGE, True, "Payload.Template.Parameter", False),
        ("template_ref", 4, STRING, False, None, False),
        ("is_definition", 5, BOOL, False, None, False),
    ],
    "Payload.Template.Parameter": [
        ("name", 1, STRING, False, None, False),
        ("type", 2, U32, False, None, False),
        *_scalars(3),
    ],
    "Payload.DataSet": [
        ("num_of_columns", 1, U64, False, None, False),
        ("columns", 2, STRING, True, None, False),
        ("types", 3, U32, True, None, False),
        ("rows", 4, MESSAGE, True, "Payload.DataSet.Row", False),
    ],
    "Payload.DataSet.DataSetValue": _scalars(1),
    "Payload.DataSet.Row": [
        ("elements", 1, MESSAGE, True, "Payload.DataSet.DataSetValue", False),
    ],
    "Payload.PropertyValue": [
        ("type", 1, U32, False, None, False),
        ("is_null", 2, BOOL, False, None, False),
        *_scalars(3),
        ("propertyset_value", 9, MESSAGE, False, "Payload.PropertySet", True),
        ("propertysets_value", 10, MESSAGE, False, "Payload.PropertySetList", True),
    ],
    "Payload.PropertySet": [
        ("keys", 1, STRING, True, None, False),
        ("values", 2, MESSAGE, True, "Payload.PropertyValue", False),
    ],
    "Payload.PropertySetList": [
        ("propertyset", 1, MESSAGE, True, "Payload.PropertySet", False),
    ],
    "Payload.MetaData": [
        ("is_multi_part", 1, BOOL, False, None, False),
        ("content_type", 2, STRING, False, None, False),
        ("size", 3, U64, False, None, False),
        ("seq", 4, U64, False, None, False),
        ("file_name", 5, STRING, False, None, False),
        ("file_type", 6, STRING, False, None, False),
        ("md5", 7, STRING, False, None, False),
        ("description", 8, STRING, False, None, False),
    ],
    "Payload.Metric": [
        ("name", 1, STRING, False, None, False),
        ("alias", 2, U64, False, None, False),
        ("timestamp", 3, U64, False, None, False),
        ("datatype", 4, U32, False, None, False),
        ("is_historical", 5, BOOL, False, None, False),
        ("is_transient", 6, BOOL, False, None, False),
        ("is_null", 7, BOOL, False, None, False),
        ("metadata", 8, MESSAGE, False, "Payload.MetaData", False),
        ("properties", 9, MESSAGE, False, "Payload.PropertySet", False),
        *_scalars(10),
        ("bytes_value", 16, BYTES, False, None, True),
        ("dataset_value", 17, MESSAGE, False, "Payload.DataSet", True),
        ("template_value", 18, MESSAGE, False, "Payload.Template", True),
    ],
}


def file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The table as a proto2 file descriptor."""
    fd = descriptor_pb2.FileDescriptorProto(
        name="shopfloor_sparkplug_b.proto", package=PACKAGE, syntax="proto2"
    )
    protos: dict[str, descriptor_pb2.DescriptorProto] = {}
    for path in MESSAGES:
        parent, _, leaf = path.rpartition(".")
        owner = protos[parent].nested_type if parent else fd.message_type
        protos[path] = owner.add(name=leaf)
    for path, rows in MESSAGES.items():
        proto = protos[path]
        if any(row[5] for row in rows):
            proto.oneof_decl.add(name=ONEOF)
        for name, number, kind, repeated, type_name, in_oneof in rows:
            field = proto.field.add(
                name=name, number=number, type=kind, label=_REP if repeated else _OPT
            )
            if type_name:
                field.type_name = f".{PACKAGE}.{type_name}"
            if in_oneof:
                field.oneof_index = 0
    return fd


@cache
def payload_class() -> Any:
    """The `Payload` message class, built once on first use (never at import)."""
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_descriptor())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.Payload"))
