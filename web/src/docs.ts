// /docs: an interactive explorer over the gateway's own /openapi.json (Swagger UI from the pinned npm package).
import { SwaggerUIBundle } from "swagger-ui-dist";
import "swagger-ui-dist/swagger-ui.css";

SwaggerUIBundle({ url: "/openapi.json", dom_id: "#api-docs", deepLinking: true });
