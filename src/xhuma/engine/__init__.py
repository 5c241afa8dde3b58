"""The transaction engine: the money rules every interface (PPU v3, SUV v1) runs on.

An interface supplies a small *flow* (`engine.flow.Flow`): how to decode and answer its
retailers, what an outcome means for its own rows (a voucher issued, a token sold), where its
advices go. The engine does the rest, the same way for every interface:

- **request**: the transaction and the exact upstream bytes are journalled before anything
  leaves; the request goes to the first candidate provider, and to the next only when the last
  certainly did not act on it (no connection was made, or it answered 503); the outcome, judged
  by `domain.outcomes.judge_money_answer` for requests that move money, and the retail answer
  are journalled before the retailer hears the journal's answer;
- **retry that retrieves**: a final answer is replayed from the journal; a request still in
  flight (a young `sent_upstream` row, on any node) is 504 "in progress"; an unknown one is
  asked again at the same provider under the same upstream id, never bought anew;
- **follow-up**: an unknown outcome queues its retrieval (a store-and-forward entry) in the
  commit that records it; the retrieved answer becomes the outcome as if it had come in time;
- **recovery**: requests a dead process left `sent_upstream` become unknown and are followed up.

Threads and transactions (the contract every flow keeps):
- `Engine` methods run on the event loop; they reach the database only through
  `Database.run(op)`, each op one transaction on a database thread.
- Every op, and every flow hook the engine calls inside one (`Flow.after_outcome`, an `also`),
  runs on a database thread inside that transaction, may run twice (after a rollback, or after
  a COMMIT whose acknowledgement was lost and whose marker was not found), and so must be
  idempotent by *our* id: a conflict on our own id is success, never a duplicate.
- Nothing on a database thread touches the event loop: wake-ups (`on_enqueued`) are called by
  the engine on the loop, after the commit."""
