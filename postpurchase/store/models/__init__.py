"""The engine's tables, as SQLAlchemy 2 typed models, one module per group of tables.

Idempotency lives in the unique constraints here: an inbox row per delivery (``dedupe_key``),
a touchpoint per subject + campaign + step + channel, a ledger row per cause, a message event
per provider event id. Writers rely on them (insert, and treat a conflict as "already done").

Money is ``Numeric`` with its ISO 4217 currency beside it; times are timezone-aware UTC.
Everything is re-exported here: import tables from ``postpurchase.store.models``.
"""

from __future__ import annotations

from postpurchase.store.models.base import (
    Base,
)
from postpurchase.store.models.customers import (
    ERASED_PREFIX,
    ConsentChange,
    ConsentPurpose,
    ConsentState,
    Customer,
    Suppression,
)
from postpurchase.store.models.inbox import (
    INBOX_CLAIMABLE,
    INBOX_CLAIMED,
    INBOX_FAILED,
    INBOX_PERSONAL,
    ClaimStatus,
    InboxEvent,
    RejectedWebhook,
)
from postpurchase.store.models.loyalty import (
    CustomerTier,
    CustomerTierChange,
    LedgerKind,
    LoyaltyLedgerEntry,
)
from postpurchase.store.models.orders import (
    Order,
    OrderItem,
    OrderRefund,
    Product,
)
from postpurchase.store.models.outcomes import (
    AttributedOrder,
    CampaignDay,
    CampaignPause,
    OutcomeSnapshot,
    TouchpointOutcome,
)
from postpurchase.store.models.privacy import (
    PrivacyRequest,
)
from postpurchase.store.models.rewards import (
    CustomerAddressKey,
    CustomerBirthday,
    PoolCode,
    Redemption,
    RedemptionStatus,
    Referral,
    ReferralCode,
    ReferralStatus,
)
from postpurchase.store.models.touchpoints import (
    TOUCHPOINT_PLANNED,
    Channel,
    MessageEvent,
    SurveyResponse,
    Touchpoint,
    TouchpointStatus,
)

# isort: split
# Tables of other packages that share this metadata (migrations compare against all of it);
# imported last, as they import ``Base`` from here.
from postpurchase.reviews import models as _review_models  # noqa: F401
from postpurchase.store import page_actions as _page_actions  # noqa: F401
from postpurchase.surveys import models as _survey_models  # noqa: F401

__all__ = [
    "AttributedOrder",
    "Base",
    "CampaignDay",
    "CampaignPause",
    "Channel",
    "ClaimStatus",
    "ConsentChange",
    "ConsentPurpose",
    "ERASED_PREFIX",
    "ConsentState",
    "Customer",
    "CustomerAddressKey",
    "CustomerBirthday",
    "CustomerTier",
    "CustomerTierChange",
    "INBOX_CLAIMABLE",
    "INBOX_CLAIMED",
    "INBOX_FAILED",
    "INBOX_PERSONAL",
    "InboxEvent",
    "LedgerKind",
    "LoyaltyLedgerEntry",
    "MessageEvent",
    "Order",
    "OrderItem",
    "OrderRefund",
    "OutcomeSnapshot",
    "PoolCode",
    "PrivacyRequest",
    "Product",
    "Redemption",
    "RedemptionStatus",
    "Referral",
    "ReferralCode",
    "ReferralStatus",
    "RejectedWebhook",
    "Suppression",
    "SurveyResponse",
    "Touchpoint",
    "TouchpointOutcome",
    "TOUCHPOINT_PLANNED",
    "TouchpointStatus",
]
