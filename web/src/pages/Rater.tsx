// A rater's blind queue: the rubric, the response (text, or a recording to play), a score with dimension scores and
// a comment, then the next task; adjudications marked; the rater's own agreement figures.
import { useCallback, useEffect, useState, type SyntheticEvent } from "react";
import { api, call, newRequestId, type Schemas } from "../api/client";
import { PromptText } from "../exam/prompt";
import { taskTypeName } from "./names";

type RatingTask = Schemas["toefl.session.v1.RatingTask"];
type RaterStatistics = Schemas["toefl.session.v1.RaterStatistics"];

export function Rater({ userId }: { userId: string }) {
  const [tasks, setTasks] = useState<RatingTask[] | null>(null);
  const [stats, setStats] = useState<RaterStatistics | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState(0);
  const load = useCallback(() => {
    call(() => api.GET("/api/ratingTasks", { params: { query: { page_size: 20 } } }))
      .then((reply) => {
        setTasks(reply.tasks ?? []);
      })
      .catch((reason: unknown) => {
        setError(reason instanceof Error ? reason.message : String(reason));
      });
    call(() => api.GET("/api/raterStatistics", { params: { query: { rater_id: userId } } }))
      .then((reply) => {
        setStats(reply.raters?.[0] ?? null);
      })
      .catch(() => undefined);
  }, [userId]);
  useEffect(load, [load]);
  const task = tasks?.[0];
  return (
    <div>
      <h1>Rating queue</h1>
      {error !== null ? <p role="alert">{error}</p> : null}
      <p>
        Rated in this sitting: {done}.
        {stats ? ` Your agreement with other raters: exact ${percent(stats.exactAgreement)}, adjacent ${percent(stats.adjacentAgreement)}, over ${stats.doubleRated ?? 0} double-rated responses.` : ""}
      </p>
      {tasks === null ? <p>Loading…</p> : null}
      {tasks !== null && task === undefined ? <p className="card">No response is waiting for your rating.</p> : null}
      {task !== undefined ? (
        <RatingForm
          key={task.responseId}
          task={task}
          onRated={() => {
            // The rated task leaves the screen at once; the queue is read again for the next.
            setTasks(null);
            setDone((n) => n + 1);
            load();
          }}
        />
      ) : null}
    </div>
  );
}

function percent(value: number | null | undefined): string {
  return `${Math.round((value ?? 0) * 100)}%`;
}

function RatingForm({ task, onRated }: { task: RatingTask; onRated: () => void }) {
  const rubric = task.rubric ?? {};
  const maxScore = rubric.maxScore ?? 5;
  const [score, setScore] = useState<number | null>(null);
  const [dimensions, setDimensions] = useState<Record<string, number>>({});
  const [comment, setComment] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [requestId] = useState(newRequestId);
  const adjudication = task.state === "RATING_TASK_STATE_NEEDS_ADJUDICATION";
  const submit = (event: SyntheticEvent) => {
    event.preventDefault();
    if (score === null) {
      setError("Choose a score first.");
      return;
    }
    call(() =>
      api.POST("/api/ratingTasks/{response_id}:rate", {
        params: { path: { response_id: task.responseId ?? "" } },
        body: { score, dimensionScores: dimensions, comment, requestId },
      }),
    )
      .then(onRated)
      .catch((reason: unknown) => {
        setError(reason instanceof Error ? reason.message : String(reason));
      });
  };
  const levels = Array.from({ length: maxScore + 1 }, (_, i) => i);
  return (
    <form className="card" onSubmit={submit} aria-label="Rate this response">
      <h2>
        {taskTypeName(task.taskType)}
        {adjudication ? " (adjudication: the two ratings disagreed)" : ""}
      </h2>
      <PromptText text={task.item?.content?.prompt} />
      <h3>Response</h3>
      {task.responseText ? <blockquote className="response">{task.responseText}</blockquote> : null}
      {task.audioRef ? <RecordingPlayer audioRef={task.audioRef} /> : null}
      <h3>{rubric.name ?? "Rubric"}</h3>
      <ul className="levels">
        {(rubric.levelDescriptors ?? []).map((descriptor, level) => (
          <li key={level}>{descriptor}</li>
        ))}
      </ul>
      <fieldset>
        <legend>Score (0 to {maxScore})</legend>
        {levels.map((level) => (
          <label key={level} className="inline">
            <input
              type="radio"
              name="score"
              checked={score === level}
              onChange={() => {
                setScore(level);
              }}
            />
            {level}
          </label>
        ))}
      </fieldset>
      {(rubric.dimensions ?? []).map((dimension) => (
        <fieldset key={dimension.name}>
          <legend>
            {dimension.name}: {dimension.description}
          </legend>
          {levels.map((level) => (
            <label key={level} className="inline">
              <input
                type="radio"
                name={`dimension-${dimension.name ?? ""}`}
                checked={dimensions[dimension.name ?? ""] === level}
                onChange={() => {
                  setDimensions({ ...dimensions, [dimension.name ?? ""]: level });
                }}
              />
              {level}
            </label>
          ))}
        </fieldset>
      ))}
      <label>
        Comment
        <textarea
          rows={3}
          value={comment}
          onChange={(e) => {
            setComment(e.target.value);
          }}
        />
      </label>
      {error !== null ? <p role="alert">{error}</p> : null}
      <button type="submit">Submit rating and take the next</button>
    </form>
  );
}

/** The spoken response: fetched with the rater's token (an <audio> element could not send it), played from memory. */
function RecordingPlayer({ audioRef }: { audioRef: string }) {
  const [url, setUrl] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let objectUrl: string | null = null;
    call(() =>
      api.GET("/api/recordings/{audio_ref}", { params: { path: { audio_ref: audioRef } }, parseAs: "blob" }),
    )
      .then((audio) => {
        objectUrl = URL.createObjectURL(audio);
        setUrl(objectUrl);
      })
      .catch((reason: unknown) => {
        setError(reason instanceof Error ? reason.message : String(reason));
      });
    return () => {
      if (objectUrl !== null) URL.revokeObjectURL(objectUrl);
    };
  }, [audioRef]);
  if (error !== null) return <p role="alert">{error}</p>;
  if (url === null) return <p>Loading the recording…</p>;
  return <audio controls src={url} aria-label="The spoken response" />;
}
