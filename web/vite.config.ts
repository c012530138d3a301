import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// `npm run dev` proxies the API to a gateway started by `make run`; the build is served by the gateway itself.
export default defineConfig({
  plugins: [react()],
  build: { outDir: "dist", assetsDir: "assets", sourcemap: false, reportCompressedSize: false },
  server: { proxy: { "/api": "http://127.0.0.1:8080" } },
});
