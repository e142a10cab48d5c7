"""Request bodies of the orders API (responses are the Order JSON built in `service_layer.views`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from orders.domain.commands import NewLineItem
from orders.domain.model import OrderLimits
from servicekit.documented import NOT_BLANK, documented


def _whole_number(value: Any) -> Any:
    """JSON has one number type: 2.0 is the integer 2 (as JSON Schema says), 2.5 and "2" are not."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a whole number")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("must be a whole number")
        return int(value)
    return value


# The bounds come before the validator: after it, pydantic writes them into the JSON Schema as the
# unknown keywords `ge`/`le` instead of `minimum`/`maximum`, and clients never learn them.
Quantity = Annotated[int, Field(ge=1, le=1_000_000), BeforeValidator(_whole_number)]
SkuId = Annotated[str, Field(strict=True, min_length=1, max_length=64)]
Parameters = dict[str, Any]


def _order_number(value: str) -> str:
    """Kept exactly as typed (spaces and special characters included); only blank is refused."""
    if not value.strip():
        raise ValueError("must not be blank")
    return value


NO_CONTROL_CHARACTERS = documented(pattern=r"^[^\x00-\x1f]*$")
"""`_customer_name`'s rule in the OpenAPI document (it also strips white space around the name first)."""


def _customer_name(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if any(ord(ch) < 32 for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _customer_email(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    try:
        return validate_email(value.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address: {exc}") from exc


class LineItemIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sku_id: SkuId
    quantity: Quantity
    parameters: Parameters = Field(default_factory=dict)

    def command(self) -> NewLineItem:
        return NewLineItem(self.sku_id, self.quantity, dict(self.parameters))


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    order_number: Annotated[
        str, Field(strict=True, min_length=1, max_length=200, json_schema_extra=documented(pattern=NOT_BLANK))
    ]
    customer_name: Annotated[str | None, Field(max_length=200, json_schema_extra=NO_CONTROL_CHARACTERS)] = None
    customer_email: Annotated[str | None, Field(max_length=320, json_schema_extra=documented(format="email"))] = None
    fulfillment_date: date | None = None
    notes: Annotated[str | None, Field(max_length=10_000)] = None
    line_items: Annotated[list[LineItemIn], Field(max_length=10_000)] = Field(default_factory=list)

    _number = field_validator("order_number")(_order_number)
    _name = field_validator("customer_name")(_customer_name)
    _email = field_validator("customer_email")(_customer_email)


class OrderPatch(BaseModel):
    """Only the fields present are changed; `null` clears an optional one."""

    model_config = ConfigDict(extra="ignore")

    order_number: Annotated[
        str | None,
        Field(
            strict=True, min_length=1, max_length=200, json_schema_extra=documented(not_null=True, pattern=NOT_BLANK)
        ),
    ] = None
    customer_name: Annotated[str | None, Field(max_length=200, json_schema_extra=NO_CONTROL_CHARACTERS)] = None
    customer_email: Annotated[str | None, Field(max_length=320, json_schema_extra=documented(format="email"))] = None
    fulfillment_date: date | None = None
    notes: Annotated[str | None, Field(max_length=10_000)] = None

    _name = field_validator("customer_name")(_customer_name)
    _email = field_validator("customer_email")(_customer_email)

    @field_validator("order_number")
    @classmethod
    def _number(cls, value: str | None) -> str | None:
        if value is None:
            raise ValueError("cannot be removed")
        return _order_number(value)

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class LineItemPatch(BaseModel):
    model_config = ConfigDict(extra="ignore")

    sku_id: SkuId | None = None
    quantity: Quantity | None = None
    parameters: Parameters | None = None


class AssignmentIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    mode: Literal["next_available", "printer", "tags"] = "next_available"
    printer_id: Annotated[str | None, Field(min_length=1, max_length=64)] = None
    tags: list[Annotated[str, Field(min_length=1, max_length=100)]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete(self) -> AssignmentIn:
        if self.mode == "printer" and not self.printer_id:
            raise ValueError("printer_id is required when mode is printer")
        if self.mode == "tags" and not self.tags:
            raise ValueError("tags must name at least one tag when mode is tags")
        return self

    def as_dict(self) -> dict[str, Any]:
        if self.mode == "printer":
            return {"mode": "printer", "printer_id": self.printer_id, "tags": []}
        if self.mode == "tags":
            return {"mode": "tags", "printer_id": None, "tags": sorted(set(self.tags))}
        return {"mode": "next_available", "printer_id": None, "tags": []}


class PrintJobsIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    assignment: AssignmentIn | None = None


class CloseOrdersIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    order_ids: Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=1000)]


def state_limits(document: dict[str, Any], limits: OrderLimits) -> None:
    """This deployment's `OrderLimits` in its OpenAPI document: the largest quantity of a line item and the
    most line items a new order may have (the models' own bounds are only the ceiling a setting may reach)."""
    schemas = document["components"]["schemas"]
    for name in ("LineItemIn", "LineItemPatch"):
        quantity = schemas[name]["properties"]["quantity"]
        for option in quantity.get("anyOf", [quantity]):
            if option.get("type") == "integer":
                option["maximum"] = min(option["maximum"], limits.max_quantity)
    line_items = schemas["OrderIn"]["properties"]["line_items"]
    line_items["maxItems"] = min(line_items["maxItems"], limits.max_line_items)
