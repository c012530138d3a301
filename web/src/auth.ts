// The signed-in user: kept for this browser tab (sessionStorage), so a reload does not sign the student out.
import { api, call, setAccessToken, type Role } from "./api/client";

export interface SignedIn {
  accessToken: string;
  userId: string;
  role: Role;
  username: string;
}

const KEY = "toefl.auth";

export function storedUser(): SignedIn | null {
  const raw = sessionStorage.getItem(KEY);
  if (raw === null) return null;
  const user = JSON.parse(raw) as SignedIn;
  setAccessToken(user.accessToken);
  return user;
}

export async function signIn(username: string, password: string): Promise<SignedIn> {
  const reply = await call(() => api.POST("/api/auth/token", { body: { username, password } }));
  const user: SignedIn = {
    accessToken: reply.accessToken ?? "",
    userId: reply.userId ?? "",
    role: reply.role ?? "ROLE_UNSPECIFIED",
    username,
  };
  sessionStorage.setItem(KEY, JSON.stringify(user));
  setAccessToken(user.accessToken);
  return user;
}

export function signOut(): void {
  sessionStorage.removeItem(KEY);
  setAccessToken(null);
}
