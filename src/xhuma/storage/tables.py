"""Table definitions (SQLAlchemy Core). Migrations in `migrations/` are generated from these."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Times are integer microseconds since the epoch (UTC): the same on both databases, sortable,
# and cheap to write on the hot path.

api_clients = Table(
    "api_clients",
    metadata,
    Column("username", String(100), primary_key=True),
    Column("password_hash", String(200), nullable=False),
    Column("client_id", String(40), nullable=False),
    Column("name", String(100), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    # "retail" may use the retail interfaces; "admin" the operator API.
    Column("role", String(16), nullable=False, default="retail"),
    Column("created_us", BigInteger, nullable=False),
    # Source networks the credential may be used from, comma-separated CIDRs (null: anywhere).
    Column("networks", Text, nullable=True),
    # The client certificate subject the credential is bound to under mutual TLS (null: none).
    Column("cert_subject", String(200), nullable=True),
)

transactions = Table(
    "transactions",
    metadata,
    # Our own id for the transaction; it is also the id we send upstream, so a provider's
    # records and ours share a key without trusting the retailer's id to be unique upstream.
    Column("id", String(36), primary_key=True),
    Column("client_id", String(40), nullable=False),
    # The retailer's id; requests and advices are separate id spaces, as the interface says.
    Column("retail_id", String(36), nullable=False),
    Column("id_space", String(8), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("state", String(16), nullable=False),
    Column("parent_id", String(36), ForeignKey("transactions.id"), nullable=True),
    Column("meter_id", String(20), nullable=True),
    Column("amount", BigInteger, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("provider", String(40), nullable=True),
    Column("error_type", String(40), nullable=True),
    Column("retail_status", Integer, nullable=True),
    # The retail response as sent, kept so a retry or reprint can be answered from the journal.
    Column("retail_response", Text, nullable=True),
    Column("upstream_request", Text, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    UniqueConstraint("client_id", "id_space", "retail_id"),
    Index(None, "created_us"),
    Index(None, "meter_id", "created_us"),
    Index(None, "state", "created_us"),
    Index(None, "parent_id"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("tx_id", String(36), ForeignKey("transactions.id"), nullable=False),
    # "retail" (originator <-> xhuma) or "upstream" (xhuma <-> provider).
    Column("leg", String(8), nullable=False),
    # "request" or "response"; for the retail leg the request is inbound, for upstream outbound.
    Column("direction", String(8), nullable=False),
    Column("operation", String(40), nullable=False),
    Column("method", String(8), nullable=True),
    Column("url", String(500), nullable=True),
    Column("status", Integer, nullable=True),
    Column("body", Text, nullable=True),
    Column("at_us", BigInteger, nullable=False),
    # For responses: time since the matching request, in microseconds.
    Column("elapsed_us", BigInteger, nullable=True),
    Column("peer", String(40), nullable=True),
    Index(None, "tx_id", "id"),
)

saf_entries = Table(
    "saf_entries",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    # One queue per destination and service, e.g. "ppu:sim".
    Column("queue", String(80), nullable=False),
    # The journalled transaction this delivery belongs to (an advice, or a purchase whose
    # outcome is being retrieved); delivery attempts are journalled on it.
    Column("tx_id", String(36), ForeignKey("transactions.id"), nullable=False),
    Column("operation", String(40), nullable=False),
    Column("method", String(8), nullable=False),
    Column("url", String(500), nullable=False),
    Column("body", Text, nullable=False),
    # pending -> delivered | exception -> (retry: pending) | resolved
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_us", BigInteger, nullable=False),
    # A worker holds an entry while it delivers it; an expired lease (a dead worker) frees it.
    Column("lease_owner", String(64), nullable=True),
    Column("lease_until_us", BigInteger, nullable=True),
    Column("last_status", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("resolution", Text, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Index(None, "state", "next_attempt_us"),
    Index(None, "queue", "state", "id"),
    # One entry per message: queueing is idempotent by our own id (an advice's, or the
    # retrieval of one transaction), so running a queueing operation twice queues once.
    UniqueConstraint("tx_id", "operation"),
)

commit_markers = Table(
    "commit_markers",
    metadata,
    # One row per group commit, written inside the group: when COMMIT raises, its presence
    # afterwards says whether the group committed (the acknowledgement was lost) or not.
    Column("id", String(32), primary_key=True),
    Column("at_us", BigInteger, nullable=False),
)

OPEN = text("state = 'open'")

reconciliation_exceptions = Table(
    "reconciliation_exceptions",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    # What it concerns: a journal transaction, or (for what no transaction carries, such as a
    # gap in a sender's transmission numbers) an EFT file.
    Column("tx_id", String(36), ForeignKey("transactions.id"), nullable=True),
    Column("eft_file_id", BigInteger, ForeignKey("eft_files.id"), nullable=True),
    # e.g. "reversal_not_supported", "delivery_stopped", "delivery_expired", "outcome_unknown"
    Column("reason", String(40), nullable=False),
    Column("detail", Text, nullable=True),
    Column("state", String(16), nullable=False),
    Column("resolution", Text, nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    Index(None, "state", "created_us"),
    # At most one open exception per transaction and reason: opening one is idempotent.
    Index("uq_open_exception", "tx_id", "reason", unique=True, sqlite_where=OPEN, postgresql_where=OPEN),
    Index("uq_open_file_exception", "eft_file_id", "reason", unique=True, sqlite_where=OPEN, postgresql_where=OPEN),
    CheckConstraint("tx_id IS NOT NULL OR eft_file_id IS NOT NULL", name="ck_reconciliation_exceptions_subject"),
)

meter_contracts = Table(
    "meter_contracts",
    metadata,
    # What each provider said about a meter: supported, not_supported, or unconfirmed (asked,
    # no answer yet). Filled by broadcast lookups, refreshed on schedule.
    Column("meter_id", String(20), primary_key=True),
    Column("provider", String(40), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("municipality", String(80), nullable=True),
    Column("learned_us", BigInteger, nullable=False),
)

routing_preferences = Table(
    "routing_preferences",
    metadata,
    # An operator's ranked providers for a municipality (rank 1 first); excluded ones are never used.
    Column("municipality", String(80), primary_key=True),
    Column("provider", String(40), primary_key=True),
    Column("rank", Integer, nullable=True),
    Column("excluded", Boolean, nullable=False, default=False),
    Column("updated_us", BigInteger, nullable=False),
)

routing_weights = Table(
    "routing_weights",
    metadata,
    # An operator's load-balancing weight for a provider; overrides the configured one.
    Column("provider", String(40), primary_key=True),
    Column("weight", Float, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
)

routing_audit = Table(
    "routing_audit",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("actor", String(100), nullable=False),
    Column("action", String(40), nullable=False),
    Column("detail", Text, nullable=False),
    Column("at_us", BigInteger, nullable=False),
)

vouchers = Table(
    "vouchers",
    metadata,
    # A voucher issued through xhuma, keyed by the provision transaction that issued it; its
    # state follows `xhuma.domain.vouchers`. Redemptions and refunds are transactions whose
    # parent is the provision.
    Column("id", String(36), ForeignKey("transactions.id"), primary_key=True),
    Column("client_id", String(40), nullable=False),
    # Null until the provider has issued it (or while its outcome is unknown).
    Column("code", String(100), nullable=True),
    Column("serial_number", String(100), nullable=True),
    # Both null for a voucher provisioned without a product (routed by its receiver).
    Column("product_code", String(40), nullable=True),
    Column("provider", String(40), nullable=False),
    Column("provider_product_code", String(40), nullable=True),
    Column("amount", BigInteger, nullable=True),
    Column("currency", String(3), nullable=True),
    # `xhuma.domain.vouchers.VoucherState`; null until issued.
    Column("state", String(24), nullable=True),
    Column("expiry", String(40), nullable=True),
    Column("created_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    UniqueConstraint("client_id", "code"),
)

voucher_early_reversals = Table(
    "voucher_early_reversals",
    metadata,
    # A reversal that arrived before the request it reverses: remembered, so that request is
    # refused when it comes (SUV §6.1).
    Column("client_id", String(40), primary_key=True),
    Column("request_id", String(36), primary_key=True),
    Column("request_kind", String(32), nullable=False),
    Column("reversal_tx_id", String(36), ForeignKey("transactions.id"), nullable=False),
    Column("reversal_id", String(36), nullable=False),
    Column("at_us", BigInteger, nullable=False),
)

catalogue_products = Table(
    "catalogue_products",
    metadata,
    # A product a client may sell, under the client's own code (`xhuma.vouchers.catalogue`).
    Column("client_id", String(40), primary_key=True),
    Column("product_code", String(40), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("product_type", String(16), nullable=False),
    Column("description", String(250), nullable=True),
    Column("fixed_value", Boolean, nullable=False),
    Column("amount", BigInteger, nullable=True),
    Column("min_amount", BigInteger, nullable=True),
    Column("max_amount", BigInteger, nullable=True),
    Column("currency", String(3), nullable=False),
    Column("valid_from", String(10), nullable=True),
    Column("valid_to", String(10), nullable=True),
    Column("updated_us", BigInteger, nullable=False),
)

catalogue_mappings = Table(
    "catalogue_mappings",
    metadata,
    # Which providers issue a client's product, under their own codes; rank 1 is tried first.
    Column("client_id", String(40), primary_key=True),
    Column("product_code", String(40), primary_key=True),
    Column("provider", String(40), primary_key=True),
    Column("provider_product_code", String(40), nullable=False),
    Column("rank", Integer, nullable=False),
)

catalogue_changes = Table(
    "catalogue_changes",
    metadata,
    # The change log: a client's catalogue version is its highest change here.
    Column("version", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("client_id", String(40), nullable=False),
    Column("product_code", String(40), nullable=False),
    Column("action", String(8), nullable=False),
    Column("actor", String(100), nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Index(None, "client_id", "version"),
)

eft_files = Table(
    "eft_files",
    metadata,
    # Every EFT file offered to intake, accepted or not (§9 of the layout: identity, duplicates).
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False),
    # sender/destination/status/number; unique among accepted files.
    Column("transmission_key", String(40), nullable=True),
    Column("content_hash", String(64), nullable=False),
    Column("content_type", String(8), nullable=True),
    # accepted | rejected | redelivered
    Column("state", String(12), nullable=False),
    Column("error", Text, nullable=True),
    Column("records", Integer, nullable=False, default=0),
    Column("transactions", Integer, nullable=False, default=0),
    Column("credit_total", BigInteger, nullable=False, default=0),
    Column("debit_total", BigInteger, nullable=False, default=0),
    Column("received_us", BigInteger, nullable=False),
    Index(None, "transmission_key"),
    Index(None, "content_hash"),
)

eft_sets = Table(
    "eft_sets",
    metadata,
    # Set keys of accepted files: a set is accepted once, ever.
    Column("set_key", String(40), primary_key=True),
    Column("file_id", BigInteger, ForeignKey("eft_files.id"), nullable=False),
)

eft_transactions = Table(
    "eft_transactions",
    metadata,
    # One credit, debit or system error correction of an accepted file, as it will be delivered.
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("file_id", BigInteger, ForeignKey("eft_files.id"), nullable=False),
    Column("line", Integer, nullable=False),
    # "credit", "debit", or "sec_20" / "sec_60"
    Column("kind", String(8), nullable=False),
    Column("user_code", String(4), nullable=False),
    Column("sequence_number", Integer, nullable=False),
    Column("action_date", String(10), nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("user_branch", Integer, nullable=False),
    Column("user_account", String(11), nullable=False),
    Column("homing_branch", Integer, nullable=False),
    Column("homing_account", String(20), nullable=False),
    Column("account_type", Integer, nullable=False),
    Column("homing_account_name", String(30), nullable=False),
    Column("user_reference", String(30), nullable=False),
    Column("entry_class", Integer, nullable=True),
    Column("original_sequence_number", Integer, nullable=True),
    Column("sec_reason", Integer, nullable=True),
    Column("correction_reference", String(20), nullable=True),
    # received -> released (queued for the bank) -> acknowledged (202) -> accepted | unpaid;
    # exception when the bank refused the message or the reconciliation window closed first.
    # An accepted original a correction returns: correcting -> corrected, or accepted again
    # (the bank refused the return), or exception (the correction was not delivered).
    Column("state", String(12), nullable=False),
    # When it may go to the bank (the business-day calendar and, for debits, the window).
    Column("due_us", BigInteger, nullable=True),
    # Set on release: the journal transaction that carries the messages of both directions.
    Column("tx_id", String(36), ForeignKey("transactions.id"), nullable=True),
    Column("message_id", String(35), nullable=True, unique=True),
    Column("released_us", BigInteger, nullable=True),
    Column("reason_code", String(8), nullable=True),
    Column("reason_text", String(140), nullable=True),
    Column("reported_us", BigInteger, nullable=True),
    # The UNPAIDS output file an unpaid was written to.
    Column("unpaid_file", String(200), nullable=True),
    # The set it came in (record id/user code/generation/creation date), for output files.
    Column("set_key", String(40), nullable=True),
    # For a correction: the original it was matched to, or why it could not be applied (§10.5),
    # and the unsuccessful-SEC output file that says so.
    Column("original_id", BigInteger, nullable=True),
    Column("correction_date", String(10), nullable=True),
    Column("failure_code", String(3), nullable=True),
    Column("secfail_file", String(200), nullable=True),
    Index(None, "file_id", "line"),
    Index(None, "user_code", "action_date", "sequence_number"),
    Index(None, "state", "due_us"),
)

rejected_messages = Table(
    "rejected_messages",
    metadata,
    # A retail message refused before any transaction was opened for it (bad credentials, too
    # large, malformed, not the client's, a taken id, an advice for nothing): our own id, so
    # writing the row again after a rolled-back group commit writes it once.
    Column("id", String(36), primary_key=True),
    Column("at_us", BigInteger, nullable=False),
    # "ppu", "suv" or "eft"
    Column("interface", String(8), nullable=False),
    Column("operation", String(40), nullable=False),
    # None when the sender was not authenticated.
    Column("client_id", String(40), nullable=True),
    Column("retail_id", String(36), nullable=True),
    Column("status", Integer, nullable=False),
    Column("error_type", String(40), nullable=True),
    Column("reason", String(500), nullable=False),
    # The request as received, capped (see journal.REJECTED_BODY_CAP); None when never read.
    Column("body", Text, nullable=True),
    Column("url", String(500), nullable=True),
    Index(None, "at_us"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at_us", BigInteger, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("source", String(100), nullable=False),
    Column("action", String(60), nullable=False),
    Column("target", Text, nullable=False),
    Column("before", Text, nullable=True),
    Column("after", Text, nullable=True),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

oauth_keys = Table(
    "oauth_keys",
    metadata,
    # The ES256 keys that sign access tokens (`xhuma.security.oauth`): the newest unretired one
    # signs; a retired one still verifies until the tokens it signed have expired.
    Column("kid", String(40), primary_key=True),
    Column("private_pem", Text, nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("retired_us", BigInteger, nullable=True),
)

oauth_revocations = Table(
    "oauth_revocations",
    metadata,
    # A revoked token (by its jti), or every token of a username issued before `before_us`
    # (jti "*" + username): kept until `expires_us`, after which the token would fail anyway.
    Column("jti", String(140), primary_key=True),
    Column("username", String(100), nullable=False),
    Column("before_us", BigInteger, nullable=True),
    Column("expires_us", BigInteger, nullable=False),
    Column("at_us", BigInteger, nullable=False),
)

NOT_REFUSED = text("status NOT IN ('ERROR', 'ROLLBACK')")
"""A refused or rolled-back file does not hold its name or content: it may be offered again."""

finance_files = Table(
    "finance_files",
    metadata,
    # A counterparty's file offered to a reconciliation process, under our own id (so offering
    # it again after a rolled-back transaction is the same offer): QUEUED -> LOADING -> LOADED | ERROR.
    Column("id", String(36), primary_key=True),
    Column("process", String(80), nullable=False),
    Column("name", String(255), nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("status", String(12), nullable=False),
    Column("records", Integer, nullable=False, default=0),
    # For ERROR: every bad line, one JSON object each (line, raw, reason).
    Column("error", Text, nullable=True),
    Column("received_us", BigInteger, nullable=False),
    Column("updated_us", BigInteger, nullable=False),
    # A file is taken once per process, by content and by name; a refused one may be offered again.
    Index(
        "uq_finance_file_hash",
        "process",
        "content_hash",
        unique=True,
        sqlite_where=NOT_REFUSED,
        postgresql_where=NOT_REFUSED,
    ),
    Index(
        "uq_finance_file_name", "process", "name", unique=True, sqlite_where=NOT_REFUSED, postgresql_where=NOT_REFUSED
    ),
)

finance_records = Table(
    "finance_records",
    metadata,
    # One record of a loaded file ("theirs"), keyed by its file and line.
    Column("file_id", String(36), ForeignKey("finance_files.id"), primary_key=True),
    Column("line", Integer, primary_key=True),
    Column("process", String(80), nullable=False),
    # The record's day in the process's time zone (YYYY-MM-DD).
    Column("day", String(10), nullable=False),
    Column("reference", String(100), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=True),
    Column("time_us", BigInteger, nullable=False),
    Column("type", String(40), nullable=True),
    Column("meter", String(40), nullable=True),
    Column("voucher", String(100), nullable=True),
    Index(None, "process", "day"),
)

finance_runs = Table(
    "finance_runs",
    metadata,
    # One `recon run` of a process for a day, under our own id.
    Column("id", String(36), primary_key=True),
    Column("process", String(80), nullable=False),
    Column("day", String(10), nullable=False),
    Column("ours", Integer, nullable=False),
    Column("theirs", Integer, nullable=False),
    Column("at_us", BigInteger, nullable=False),
    Index(None, "process", "day"),
)

finance_results = Table(
    "finance_results",
    metadata,
    # Each record's current result: ours by transaction id, theirs by "file_id:line".
    Column("process", String(80), primary_key=True),
    Column("side", String(8), primary_key=True),
    Column("record_id", String(48), primary_key=True),
    Column("record_day", String(10), nullable=False),
    # The run that decided it last (a record unmatched on its day is offered again next day).
    Column("run_day", String(10), nullable=False),
    Column("run_id", String(36), nullable=False),
    # matched | partially_matched | unmatched | expired
    Column("status", String(20), nullable=False),
    Column("rule", String(80), nullable=True),
    Column("group_id", String(100), nullable=True),
    # JSON: the other side's record ids, and for a partial match field -> difference.
    Column("counterparts", Text, nullable=True),
    Column("differences", Text, nullable=True),
    Column("resolution", String(120), nullable=True),
    Column("reference", String(100), nullable=True),
    Column("amount", BigInteger, nullable=False),
    Column("time_us", BigInteger, nullable=False),
    # Held: resolved by an approved proposal, or settled; a later run neither offers nor replaces it.
    Column("approval_id", String(36), nullable=True),
    Column("settlement_id", String(36), nullable=True),
    Index(None, "process", "run_day", "status"),
    Index(None, "process", "record_day", "status"),
)

PENDING_ONLY = text("status = 'pending'")
DRAFT_ONLY = text("status = 'DRAFT'")

finance_approvals = Table(
    "finance_approvals",
    metadata,
    # A change one person (the maker) proposes and another (an approver) approves or rejects:
    # pending -> approved | rejected (`xhuma.finance.approvals`).
    Column("id", String(36), primary_key=True),
    Column("kind", String(20), nullable=False),
    Column("target", String(200), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(10), nullable=False),
    Column("maker", String(100), nullable=False),
    Column("maker_note", Text, nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("checker", String(100), nullable=True),
    Column("checker_note", Text, nullable=True),
    Column("decided_us", BigInteger, nullable=True),
    # JSON: what the approval did (or why it could not).
    Column("outcome", Text, nullable=True),
    Index(None, "status", "created_us"),
    # One pending proposal per target at a time.
    Index(
        "uq_finance_approval_pending",
        "kind",
        "target",
        unique=True,
        sqlite_where=PENDING_ONLY,
        postgresql_where=PENDING_ONLY,
    ),
)

finance_settlements = Table(
    "finance_settlements",
    metadata,
    # A settlement run of one counterparty over a period: DRAFT -> APPROVED (frozen) | REJECTED.
    # Amounts are integer cents; net_to_counterparty > 0: we pay them, < 0: they pay us.
    Column("id", String(36), primary_key=True),
    Column("counterparty", String(80), nullable=False),
    Column("from_day", String(10), nullable=False),
    Column("to_day", String(10), nullable=False),
    Column("status", String(10), nullable=False),
    Column("currency", String(3), nullable=True),
    Column("units", Integer, nullable=False),
    Column("approved", BigInteger, nullable=False),
    Column("reversed", BigInteger, nullable=False),
    Column("refunded", BigInteger, nullable=False),
    Column("principal", BigInteger, nullable=False),
    Column("principal_payer", String(12), nullable=False),
    Column("fees_to_us", BigInteger, nullable=False),
    Column("fees_to_them", BigInteger, nullable=False),
    Column("net_to_counterparty", BigInteger, nullable=False),
    Column("created_by", String(100), nullable=False),
    Column("created_us", BigInteger, nullable=False),
    Column("approval_id", String(36), nullable=True),
    Column("decided_us", BigInteger, nullable=True),
    Index(None, "counterparty", "status"),
    # One draft per counterparty at a time (monthly fee tiers count settlements in order).
    Index(
        "uq_finance_settlement_draft", "counterparty", unique=True, sqlite_where=DRAFT_ONLY, postgresql_where=DRAFT_ONLY
    ),
)

finance_settlement_units = Table(
    "finance_settlement_units",
    metadata,
    # One settled match (a group of records, or one accepted record): its agreed amount and fee.
    Column("settlement_id", String(36), ForeignKey("finance_settlements.id"), primary_key=True),
    Column("unit", String(200), primary_key=True),
    Column("process", String(80), nullable=False),
    # sale | reversed | refund
    Column("category", String(10), nullable=False),
    Column("month", String(7), nullable=False),
    Column("time_us", BigInteger, nullable=False),
    Column("reference", String(100), nullable=True),
    Column("amount", BigInteger, nullable=False),
    Column("fee", BigInteger, nullable=False),
)

finance_settlement_records = Table(
    "finance_settlement_records",
    metadata,
    # Every record (either side) a settlement covers; approval marks their results settled.
    Column("settlement_id", String(36), ForeignKey("finance_settlements.id"), primary_key=True),
    Column("process", String(80), primary_key=True),
    Column("side", String(8), primary_key=True),
    Column("record_id", String(48), primary_key=True),
    Column("unit", String(200), nullable=False),
)

finance_settlement_fees = Table(
    "finance_settlement_fees",
    metadata,
    # A settlement's fees per `[[finance.fees]]` rule and calendar month (the tier volume).
    Column("settlement_id", String(36), ForeignKey("finance_settlements.id"), primary_key=True),
    Column("rule", String(80), primary_key=True),
    Column("month", String(7), primary_key=True),
    Column("payer", String(12), nullable=False),
    Column("count", Integer, nullable=False),
    Column("volume", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
)
