// Speaking: the prompt (its audio once), a preparation countdown, then the student's answer recorded with a visible
// countdown of the response window, kept in the browser (keptRecordings) and uploaded (sent again with the same
// request id until the server answers, after a reload too), and answered with the reference the server gave it.
import { useEffect, useRef, useState } from "react";
import { api, ApiError, call, newRequestId, OfflineError, type Answer } from "../api/client";
import { formatClock } from "./clock";
import { forgetRecording, keepRecording, keptRecording } from "./keptRecordings";

type Phase = "prompt" | "preparing" | "recording" | "uploading" | "saved" | "failed" | "blocked";

const RETRY_MS = 2000;

/** The recorder's format: what this browser records (WebM/Opus in Chromium and Firefox, MP4 in Safari). */
function recordingType(): string {
  for (const type of ["audio/webm;codecs=opus", "audio/webm", "audio/mp4"]) {
    if (MediaRecorder.isTypeSupported(type)) return type;
  }
  return "";
}

async function upload(sessionId: string, itemId: string, audio: Blob, requestId: string): Promise<string> {
  for (;;) {
    try {
      const recording = await call(() =>
        api.POST("/api/sessions/{session_id}/recordings/{item_id}", {
          params: { path: { session_id: sessionId, item_id: itemId }, query: { request_id: requestId } },
          body: audio as never,
          bodySerializer: (body: unknown) => body as Blob,
          headers: { "Content-Type": audio.type },
        }),
      );
      return recording.audioRef ?? "";
    } catch (error) {
      // Offline: the same recording, with the same request id, once the network is back.
      if (!(error instanceof OfflineError)) throw error;
      await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
    }
  }
}

export function Recorder(props: {
  sessionId: string;
  itemId: string;
  preparationSeconds: number;
  responseSeconds: number;
  answered: boolean;
  ready: boolean;
  onAnswer: (answer: Answer) => void;
}) {
  const { sessionId, itemId, preparationSeconds, responseSeconds, onAnswer } = props;
  const [phase, setPhase] = useState<Phase>(props.answered ? "saved" : "prompt");
  const [left, setLeft] = useState(0);
  const [message, setMessage] = useState<string | null>(null);
  const recorder = useRef<MediaRecorder | null>(null);
  // Leaving the question (Next, or the part's time up) ends the answer: what was said so far is kept and sent, and
  // the microphone is released, rather than recording on, unseen, until the page closes.
  useEffect(
    () => () => {
      if (recorder.current?.state === "recording") recorder.current.stop();
    },
    [],
  );

  const send = (audio: Blob, requestId: string) => {
    setPhase("uploading");
    upload(sessionId, itemId, audio, requestId)
      .then((audioRef) => {
        onAnswer({ speech: { audioRef, durationMs: responseSeconds * 1000 } });
        setPhase("saved");
        void forgetRecording(sessionId, itemId);
      })
      .catch((error: unknown) => {
        // Refused for good (the part closed, say): recording again is the way on. A server error, or a proctor's
        // pause, keeps it for the question shown again (or a reload) to send again.
        const final = error instanceof ApiError && error.status < 500 && error.reason !== "SESSION_PAUSED";
        if (final) void forgetRecording(sessionId, itemId);
        setMessage(error instanceof ApiError ? error.message : "The recording could not be sent.");
        setPhase("failed");
      });
  };

  // A recording kept before a reload (offline, say) and not yet answered is sent now, with its request id.
  useEffect(() => {
    if (props.answered) return;
    let current = true;
    void keptRecording(sessionId, itemId).then((kept) => {
      if (current && kept !== undefined) send(kept.audio, kept.requestId);
    });
    return () => {
      current = false;
    };
    // Once per question shown: send() is this render's, and an answer given later needs no resend.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [sessionId, itemId]);

  // The countdown runs from a fixed end time, so that re-renders (the module clock ticks) never hold it back.
  const [endsAt, setEndsAt] = useState(0);
  useEffect(() => {
    if (phase !== "preparing" && phase !== "recording") return;
    const timer = setInterval(() => {
      const seconds = Math.max(0, Math.ceil((endsAt - Date.now()) / 1000));
      setLeft(seconds);
      if (seconds > 0) return;
      clearInterval(timer);
      if (phase === "preparing") void record();
      else recorder.current?.stop();
    }, 250);
    return () => {
      clearInterval(timer);
    };
    // record() is this render's; the countdown restarts only when its phase or end time changes.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [phase, endsAt]);

  const start = () => {
    setMessage(null);
    if (preparationSeconds > 0) {
      setLeft(preparationSeconds);
      setEndsAt(Date.now() + preparationSeconds * 1000);
      setPhase("preparing");
    } else {
      void record();
    }
  };

  const record = async () => {
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch {
      setPhase("blocked");
      return;
    }
    const type = recordingType();
    const media = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
    const chunks: Blob[] = [];
    media.ondataavailable = (event) => {
      chunks.push(event.data);
    };
    media.onstop = () => {
      stream.getTracks().forEach((track) => {
        track.stop();
      });
      const audio = new Blob(chunks, { type: media.mimeType || type });
      const requestId = newRequestId();
      setPhase("uploading");
      void keepRecording(sessionId, itemId, { audio, requestId }).then(() => {
        send(audio, requestId);
      });
    };
    recorder.current = media;
    media.start();
    setLeft(responseSeconds);
    setEndsAt(Date.now() + responseSeconds * 1000);
    setPhase("recording");
  };

  return (
    <div className="recorder" aria-live="polite">
      {phase === "prompt" ? (
        <button type="button" disabled={!props.ready} onClick={start}>
          {preparationSeconds > 0 ? "Start preparing" : "Start recording"}
        </button>
      ) : null}
      {phase === "preparing" ? <p role="status">Prepare your answer: recording starts in {formatClock(left)}.</p> : null}
      {phase === "recording" ? (
        <p role="status" className="recording">
          Recording: {formatClock(left)} left.
        </p>
      ) : null}
      {phase === "uploading" ? <p role="status">Sending your recording…</p> : null}
      {phase === "saved" ? <p role="status">Your spoken answer is saved.</p> : null}
      {phase === "blocked" ? (
        <div role="alert">
          <p>The microphone is blocked or missing. Allow this page to use the microphone, then try again.</p>
          <button type="button" onClick={start}>
            Try again
          </button>
        </div>
      ) : null}
      {phase === "failed" ? (
        <div role="alert">
          <p>{message}</p>
          <button type="button" onClick={start}>
            Record again
          </button>
        </div>
      ) : null}
    </div>
  );
}
