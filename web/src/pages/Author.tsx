// Authors and admins: the item bank with filters, an item's FULL view with its statistics and reviews, and the
// review workflow's next step (submit, approve or reject with a comment, activate).
import { useCallback, useEffect, useRef, useState } from "react";
import { api, call, type Item, type Schemas } from "../api/client";
import { PromptText } from "../exam/prompt";
import { SECTIONS, sectionName, taskTypeName } from "./names";

type Review = Schemas["toefl.item.v1.Review"];
type Statistics = Schemas["toefl.item.v1.ItemStatistics"];
type Status = NonNullable<Item["status"]>;

const STATUSES = ["ITEM_STATUS_DRAFT", "ITEM_STATUS_IN_REVIEW", "ITEM_STATUS_APPROVED", "ITEM_STATUS_ACTIVE", "ITEM_STATUS_RETIRED"] as const;

function statusName(status: Status | null | undefined): string {
  return String(status ?? "").replace(/^ITEM_STATUS_/, "").replace("_", " ").toLowerCase();
}

export function Author() {
  const [section, setSection] = useState<(typeof SECTIONS)[number] | "">("");
  const [status, setStatus] = useState<(typeof STATUSES)[number] | "">("ITEM_STATUS_DRAFT");
  const [items, setItems] = useState<Item[] | null>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  // Only the latest search shows: an earlier one answered late (a long list) must not replace it.
  const latest = useRef(0);
  const search = useCallback(() => {
    const ticket = ++latest.current;
    setItems(null);
    const query = {
      page_size: 50,
      view: "ITEM_VIEW_FULL" as const,
      ...(section ? { section } : {}),
      ...(status ? { status } : {}),
    };
    call(() => api.GET("/api/items", { params: { query } }))
      .then((reply) => {
        if (ticket === latest.current) setItems(reply.items ?? []);
      })
      .catch((reason: unknown) => {
        if (ticket === latest.current) setError(reason instanceof Error ? reason.message : String(reason));
      });
  }, [section, status]);
  useEffect(search, [search]);
  return (
    <div>
      <h1>Item bank</h1>
      <form className="card filters" aria-label="Filters" onSubmit={(e) => { e.preventDefault(); search(); }}>
        <label>
          Section
          <select value={section} onChange={(e) => { setSection(e.target.value as typeof section); }}>
            <option value="">Any</option>
            {SECTIONS.map((s) => (
              <option key={s} value={s}>
                {sectionName(s)}
              </option>
            ))}
          </select>
        </label>
        <label>
          Status
          <select value={status} onChange={(e) => { setStatus(e.target.value as typeof status); }}>
            <option value="">Any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {statusName(s)}
              </option>
            ))}
          </select>
        </label>
      </form>
      {error !== null ? <p role="alert">{error}</p> : null}
      <div className="split">
        <ul className="card item-list" aria-label="Items">
          {items === null ? <li>Loading…</li> : null}
          {items !== null && items.length === 0 ? <li>No items match.</li> : null}
          {(items ?? []).map((item) => (
            <li key={item.itemId}>
              <button
                type="button"
                className="link"
                aria-current={selected === item.itemId}
                onClick={() => {
                  setSelected(item.itemId ?? null);
                }}
              >
                {taskTypeName(item.taskType)}: {(item.content?.prompt ?? "").slice(0, 60)} ({statusName(item.status)})
              </button>
            </li>
          ))}
        </ul>
        {selected !== null ? <ItemDetail key={selected} itemId={selected} onChanged={search} /> : null}
      </div>
    </div>
  );
}

function ItemDetail({ itemId, onChanged }: { itemId: string; onChanged: () => void }) {
  const [item, setItem] = useState<Item | null>(null);
  const [reviews, setReviews] = useState<Review[]>([]);
  const [stats, setStats] = useState<Statistics | null>(null);
  const [comment, setComment] = useState("");
  const [message, setMessage] = useState<string | null>(null);
  // The item's heading takes the focus when it opens and after each step, so that a keyboard user continues in the
  // item (the button pressed may be gone) rather than from the top of the page, past every item of the list.
  const heading = useRef<HTMLHeadingElement>(null);
  const focusHeading = useRef(true);
  useEffect(() => {
    if (item !== null && focusHeading.current) {
      focusHeading.current = false;
      heading.current?.focus();
    }
  }, [item]);
  const load = useCallback(() => {
    const path = { item_id: itemId };
    call(() => api.GET("/api/items/{item_id}", { params: { path, query: { view: "ITEM_VIEW_FULL" } } }))
      .then(setItem)
      .catch((reason: unknown) => {
        setMessage(reason instanceof Error ? reason.message : String(reason));
      });
    call(() => api.GET("/api/items/{item_id}/reviews", { params: { path } }))
      .then((reply) => {
        setReviews(reply.reviews ?? []);
      })
      .catch(() => undefined);
    call(() => api.GET("/api/items/{item_id}/statistics", { params: { path } }))
      .then(setStats)
      .catch(() => {
        setStats(null);
      });
  }, [itemId]);
  useEffect(load, [load]);
  const act = (what: string, send: () => Promise<unknown>) => {
    setMessage(null);
    send()
      .then(() => {
        setMessage(`${what}: done.`);
        focusHeading.current = true;
        load();
        onChanged();
      })
      .catch((reason: unknown) => {
        setMessage(reason instanceof Error ? reason.message : String(reason));
      });
  };
  if (item === null) return <p className="card">Loading the item…</p>;
  const path = { item_id: itemId };
  const content = item.content ?? {};
  const review = (verdict: "REVIEW_VERDICT_APPROVE" | "REVIEW_VERDICT_REJECT") =>
    call(() => api.POST("/api/items/{item_id}:review", { params: { path }, body: { verdict, comment } }));
  return (
    <section className="card item-detail" aria-label="Item">
      <h2 ref={heading} tabIndex={-1}>
        {taskTypeName(item.taskType)}, {sectionName(item.section)} ({statusName(item.status)}, revision {item.revision})
      </h2>
      <PromptText text={content.prompt} />
      {content.text ? <p>{content.text}</p> : null}
      {(content.options ?? []).length > 0 ? (
        <ol type="A">
          {(content.options ?? []).map((option, index) => (
            <li key={index}>
              {option}
              {item.answerKey?.correctOption === index ? " (key)" : ""}
            </li>
          ))}
        </ol>
      ) : null}
      <dl>
        <dt>IRT</dt>
        <dd>
          {item.irt
            ? `${String(item.irt.model ?? "").replace("IRT_MODEL_", "")}: a ${fmt(item.irt.a)}, b ${fmt(item.irt.b)}, c ${fmt(item.irt.c)}`
            : "not calibrated"}
        </dd>
        <dt>Statistics</dt>
        <dd>
          {stats
            ? `${stats.administrations ?? 0} administrations, p-value ${fmt(stats.pValue)}, point-biserial ${fmt(stats.pointBiserial)}`
            : "none yet"}
        </dd>
      </dl>
      <h3>Reviews</h3>
      <ul>
        {reviews.length === 0 ? <li>None.</li> : null}
        {reviews.map((r) => (
          <li key={r.reviewId}>
            {String(r.verdict ?? "").replace("REVIEW_VERDICT_", "").toLowerCase()} by {r.reviewer || "the QA checks"}
            {r.comment ? `: ${r.comment}` : ""}
          </li>
        ))}
      </ul>
      <h3>Next step</h3>
      {item.status === "ITEM_STATUS_DRAFT" ? (
        <button type="button" onClick={() => { act("Submitted for review", () => call(() => api.POST("/api/items/{item_id}:submitForReview", { params: { path }, body: {} }))); }}>
          Submit for review
        </button>
      ) : null}
      {item.status === "ITEM_STATUS_IN_REVIEW" ? (
        <>
          <label>
            Review comment
            <textarea rows={2} value={comment} onChange={(e) => { setComment(e.target.value); }} />
          </label>
          <button type="button" onClick={() => { act("Approved", () => review("REVIEW_VERDICT_APPROVE")); }}>
            Approve
          </button>
          <button type="button" onClick={() => { act("Rejected", () => review("REVIEW_VERDICT_REJECT")); }}>
            Reject
          </button>
        </>
      ) : null}
      {item.status === "ITEM_STATUS_APPROVED" ? (
        <button type="button" onClick={() => { act("Activated", () => call(() => api.POST("/api/items/{item_id}:activate", { params: { path }, body: {} }))); }}>
          Activate
        </button>
      ) : null}
      {message !== null ? <p role="status">{message}</p> : null}
    </section>
  );
}

function fmt(value: number | string | null | undefined): string {
  return value === null || value === undefined ? "–" : Number(value).toFixed(2);
}
