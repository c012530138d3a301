// One screen per task type: each renders its item and reports the student's answer as the API's Answer.
import { useEffect, useRef, useState } from "react";
import type { Answer, Item, Passage } from "../api/client";
import { PromptText } from "./prompt";
import { Recorder } from "./recorder";

export interface TaskProps {
  sessionId: string;
  item: Item;
  passage: Passage | undefined;
  answer: Answer | undefined;
  onAnswer: (answer: Answer) => void;
  /** The question's prompt audio was played before, on this device or another: it is not offered again. */
  audioPlayed: boolean;
  /** The prompt audio starts playing (reported in the event log, so that no device offers it again). */
  onAudioPlayed: () => void;
}

export function Task(props: TaskProps) {
  switch (props.item.taskType) {
    case "TASK_TYPE_COMPLETE_THE_WORDS":
      return <CompleteTheWords {...props} />;
    case "TASK_TYPE_BUILD_A_SENTENCE":
      return <BuildSentence {...props} />;
    case "TASK_TYPE_WRITE_AN_EMAIL":
    case "TASK_TYPE_ACADEMIC_DISCUSSION":
      return <WriteText {...props} />;
    case "TASK_TYPE_LISTEN_AND_REPEAT":
    case "TASK_TYPE_TAKE_AN_INTERVIEW":
      return <Speaking {...props} />;
    default:
      return <Choice {...props} />;
  }
}

/** Whether `item`'s prompt audio was played before: it, or (a conversation heard once for all its questions) another
 * question of its passage, is among `played`. */
export function audioPlayedBefore(item: Item, items: readonly Item[], played: ReadonlySet<string>): boolean {
  return items.some(
    (other) =>
      played.has(other.itemId ?? "") &&
      (other.itemId === item.itemId || (Boolean(item.passageId) && other.passageId === item.passageId)),
  );
}

function PassageView({ passage }: { passage: Passage | undefined }) {
  if (passage === undefined || (!passage.text && !passage.title)) return null;
  return (
    // Focusable: a long passage scrolls, and a keyboard user must be able to scroll it.
    <article className="passage" aria-label="Passage" tabIndex={0}>
      {passage.title ? <h3>{passage.title}</h3> : null}
      {(passage.text ?? "").split(/\n+/).map((paragraph, index) => (
        <p key={index}>{paragraph}</p>
      ))}
    </article>
  );
}

/** Prompt audio: plays once, with no pause or seek, as on the test. */
export function PlayOnce(props: {
  src: string;
  label: string;
  alreadyHeard?: boolean;
  playedBefore: boolean;
  onPlay: () => void;
  onEnded: () => void;
}) {
  const { src, label, onPlay, onEnded } = props;
  const audio = useRef<HTMLAudioElement>(null);
  const [state, setState] = useState<"ready" | "playing" | "played" | "failed">(
    props.alreadyHeard ? "played" : "ready",
  );
  // Played before this screen showed (after a reload, or on another device): said, and nothing to press.
  const [playedBefore] = useState(props.playedBefore);
  if (playedBefore) return <p className="audio">The audio for this question has already been played.</p>;
  return (
    <div className="audio">
      <audio
        ref={audio}
        src={src}
        preload="auto"
        onEnded={() => {
          setState("played");
          onEnded();
        }}
        onError={() => {
          setState("failed");
          onEnded();
        }}
      />
      <button
        type="button"
        disabled={state !== "ready"}
        onClick={() => {
          setState("playing");
          onPlay();
          audio.current?.play().catch(() => {
            setState("failed");
            onEnded();
          });
        }}
      >
        {state === "ready" ? `Play ${label}` : state === "playing" ? "Playing…" : "Heard: it plays once"}
      </button>
      {state === "failed" ? <p role="alert">The audio could not be played. Please tell your proctor.</p> : null}
    </div>
  );
}

function Choice({ item, passage, answer, onAnswer, audioPlayed, onAudioPlayed }: TaskProps) {
  const content = item.content ?? {};
  const audioUrl = passage?.audioUrl || content.audioUrl || "";
  // A conversation is heard once for all its questions, and a reload does not offer it again.
  const heardKey = `toefl.heard.${passage?.passageId || item.itemId || ""}`;
  const [heard, setHeard] = useState(
    audioUrl === "" || answer !== undefined || audioPlayed || localStorage.getItem(heardKey) !== null,
  );
  const chosen = answer?.choiceIndex;
  return (
    <div className={passage?.text ? "task with-passage" : "task"}>
      <PassageView passage={passage} />
      <div className="question">
        {/* Stays on the page once played: a failure must stay readable, and it must not offer a second play. */}
        {audioUrl ? (
          <PlayOnce
            src={audioUrl}
            label="the recording"
            alreadyHeard={heard}
            playedBefore={audioPlayed}
            onPlay={onAudioPlayed}
            onEnded={() => {
              localStorage.setItem(heardKey, "1");
              setHeard(true);
            }}
          />
        ) : null}
        {heard ? (
          <fieldset>
            <legend>{content.prompt}</legend>
            {(content.options ?? []).map((option, index) => (
              <label key={index} className="option">
                <input
                  type="radio"
                  name={`choice-${item.itemId ?? ""}`}
                  checked={chosen === index}
                  onChange={() => {
                    onAnswer({ choiceIndex: index });
                  }}
                />
                {option}
              </label>
            ))}
          </fieldset>
        ) : (
          <p>Listen to the recording. The questions appear when it ends.</p>
        )}
      </div>
    </div>
  );
}

function CompleteTheWords({ item, answer, onAnswer }: TaskProps) {
  const content = item.content ?? {};
  const slots = content.slots ?? [];
  const words = (content.text ?? "").split(" ");
  const given = answer?.completions?.values ?? [];
  const [letters, setLetters] = useState<string[]>(() => slots.map((_, i) => given[i] ?? ""));
  const bySlotWord = new Map(slots.map((slot, index) => [slot.wordIndex ?? -1, { slot, index }]));
  return (
    <div className="task">
      <PromptText text={content.prompt} />
      <p className="ctw">
        {words.map((word, wordIndex) => {
          const found = bySlotWord.get(wordIndex);
          if (found === undefined) return <span key={wordIndex}>{word} </span>;
          const { slot, index } = found;
          const width = slot.missingLetters ?? 1;
          const trailing = word.replace(/^[^_]*_+/, "");
          return (
            <span key={wordIndex} className="slot">
              {slot.visiblePrefix}
              <input
                aria-label={`Missing letters of word ${index + 1}, ${width} letters`}
                maxLength={width}
                size={width}
                value={letters[index] ?? ""}
                onChange={(event) => {
                  const next = letters.slice();
                  next[index] = event.target.value.replace(/[^A-Za-z]/g, "");
                  setLetters(next);
                }}
                onBlur={() => {
                  onAnswer({ completions: { values: letters } });
                }}
              />
              {trailing}{" "}
            </span>
          );
        })}
      </p>
    </div>
  );
}

function BuildSentence({ item, answer, onAnswer }: TaskProps) {
  const content = item.content ?? {};
  const bank = content.wordBank ?? [];
  const [order, setOrder] = useState<number[]>(() => indicesOf(bank, answer?.wordSequence?.values ?? []));
  const update = (next: number[]) => {
    setOrder(next);
    if (next.length === bank.length) onAnswer({ wordSequence: { values: next.map((i) => bank[i] ?? "") } });
  };
  return (
    <div className="task">
      <PromptText text={content.prompt} />
      <p className="sentence" aria-label="Your sentence">
        {order.map((index, position) => (
          <button
            type="button"
            key={index}
            className="word placed"
            aria-label={`Remove "${bank[index] ?? ""}" from position ${position + 1}`}
            onClick={() => {
              update(order.filter((i) => i !== index));
            }}
          >
            {bank[index]}
          </button>
        ))}
        {order.length === 0 ? <span className="hint">Choose the words in order.</span> : null}
      </p>
      <div className="bank" aria-label="Word bank">
        {bank.map((word, index) =>
          order.includes(index) ? null : (
            <button
              type="button"
              key={index}
              className="word"
              onClick={() => {
                update([...order, index]);
              }}
            >
              {word}
            </button>
          ),
        )}
      </div>
    </div>
  );
}

function indicesOf(bank: string[], words: string[]): number[] {
  const used = new Set<number>();
  const out: number[] = [];
  for (const word of words) {
    const index = bank.findIndex((w, i) => w === word && !used.has(i));
    if (index >= 0) {
      used.add(index);
      out.push(index);
    }
  }
  return out;
}

function countWords(text: string): number {
  return text.trim() === "" ? 0 : text.trim().split(/\s+/).length;
}

function WriteText({ item, passage, answer, onAnswer }: TaskProps) {
  const content = item.content ?? {};
  const [text, setText] = useState(answer?.text ?? "");
  const words = countWords(text);
  // Saved while the student writes (every few seconds of quiet), not only when they leave the box.
  useEffect(() => {
    if (text === (answer?.text ?? "")) return;
    const timer = setTimeout(() => {
      onAnswer({ text });
    }, 3000);
    return () => {
      clearTimeout(timer);
    };
  }, [text, answer?.text, onAnswer]);
  return (
    <div className={passage?.text ? "task with-passage" : "task"}>
      <PassageView passage={passage} />
      <div className="question">
        <PromptText text={content.prompt} />
        {content.text ? <p className="context">{content.text}</p> : null}
        <label>
          Your response
          <textarea
            rows={12}
            value={text}
            onChange={(event) => {
              setText(event.target.value);
            }}
            onBlur={() => {
              if (text !== (answer?.text ?? "")) onAnswer({ text });
            }}
          />
        </label>
        <p className="word-count" aria-live="polite">
          {words} words{content.minWords ? ` (at least ${content.minWords} recommended)` : ""}
        </p>
      </div>
    </div>
  );
}

function Speaking({ sessionId, item, answer, onAnswer, audioPlayed, onAudioPlayed }: TaskProps) {
  const content = item.content ?? {};
  const audioUrl = content.audioUrl || "";
  const heardKey = `toefl.heard.${item.itemId ?? ""}`;
  const [heard, setHeard] = useState(audioUrl === "" || audioPlayed || localStorage.getItem(heardKey) !== null);
  return (
    <div className="task">
      <PromptText text={content.prompt} />
      {content.text ? <p className="context">{content.text}</p> : null}
      {audioUrl ? (
        <PlayOnce
          src={audioUrl}
          label="the prompt"
          alreadyHeard={heard}
          playedBefore={audioPlayed}
          onPlay={onAudioPlayed}
          onEnded={() => {
            localStorage.setItem(heardKey, "1");
            setHeard(true);
          }}
        />
      ) : null}
      <Recorder
        sessionId={sessionId}
        itemId={item.itemId ?? ""}
        preparationSeconds={content.preparationSeconds ?? 0}
        responseSeconds={content.responseSeconds ?? 30}
        answered={answer?.speech?.audioRef !== undefined && answer.speech.audioRef !== ""}
        ready={heard}
        onAnswer={onAnswer}
      />
    </div>
  );
}
