import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

// `npm run dev` proxies the API to a gateway started by `make run`; the build is served by the gateway itself.
export default defineConfig({
  plugins: [react()],
  build: {
    outDir: "dist",
    assetsDir: "assets",
    sourcemap: false,
    reportCompressedSize: false,
    // The manifest says which chunks each page loads: the size budget is the exam's page, not /docs.
    manifest: true,
    // Swagger UI is one large bundle, loaded by /docs only (the exam's page has its own budget: scripts/size.mjs).
    chunkSizeWarningLimit: 2000,
    rollupOptions: { input: { main: "index.html", docs: "docs.html" } },
  },
  server: { proxy: { "/api": "http://127.0.0.1:8080" } },
});
