import { defineConfig } from "vite";

// Django (whitenoise) serves the build from /static/; the app uses hash routes so "/" is the only page.
export default defineConfig({
  base: "/static/",
  build: { outDir: "dist", emptyOutDir: true, chunkSizeWarningLimit: 4000 },
  server: {
    proxy: { "/api": "http://127.0.0.1:8000" },
  },
  test: { include: ["tests/**/*.test.ts"], environment: "node" },
});
