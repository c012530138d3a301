// Spoken answers kept in this browser's IndexedDB from the moment the recording stops until the server has them:
// a reload or a closed tab while offline loses no recording (localStorage holds strings only, and too few bytes).
const DATABASE = "toefl-recordings";
const STORE = "pending";

export interface KeptRecording {
  audio: Blob;
  // The upload's request id: sent again with it, the recording is stored once.
  requestId: string;
}

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DATABASE, 1);
    request.onupgradeneeded = () => {
      request.result.createObjectStore(STORE);
    };
    request.onsuccess = () => {
      resolve(request.result);
    };
    request.onerror = () => {
      reject(request.error ?? new Error("IndexedDB is not available"));
    };
  });
}

async function run<T>(mode: IDBTransactionMode, act: (store: IDBObjectStore) => IDBRequest): Promise<T> {
  const db = await open();
  try {
    return await new Promise<T>((resolve, reject) => {
      const transaction = db.transaction(STORE, mode);
      const request = act(transaction.objectStore(STORE));
      transaction.oncomplete = () => {
        resolve(request.result as T);
      };
      transaction.onerror = () => {
        reject(transaction.error ?? new Error("IndexedDB refused the change"));
      };
    });
  } finally {
    db.close();
  }
}

function keyOf(sessionId: string, itemId: string): string {
  return `${sessionId}/${itemId}`;
}

/** Keeps the recording; a browser without IndexedDB (or out of space) keeps it in memory only, as before. */
export async function keepRecording(sessionId: string, itemId: string, kept: KeptRecording): Promise<void> {
  try {
    await run("readwrite", (store) => store.put(kept, keyOf(sessionId, itemId)));
  } catch {
    // Still uploaded from memory; only a reload before the upload would lose it.
  }
}

export async function keptRecording(sessionId: string, itemId: string): Promise<KeptRecording | undefined> {
  try {
    return await run<KeptRecording | undefined>("readonly", (store) => store.get(keyOf(sessionId, itemId)));
  } catch {
    return undefined;
  }
}

export async function forgetRecording(sessionId: string, itemId: string): Promise<void> {
  try {
    await run("readwrite", (store) => store.delete(keyOf(sessionId, itemId)));
  } catch {
    // Nothing kept, or nothing to do: the server has the recording.
  }
}
