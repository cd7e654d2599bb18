// The report's persona_features part: latent cards with the firing token highlighted, speaker
// mix, histogram, diff / intervention / dose-response tables; hostile tokens and model ids escaped.
import { describe, expect, it } from "vitest";
import { renderPersonaFeatures } from "../../src/report/persona-features-section.ts";
import { PersonaFeaturesResultsSchema } from "../../src/results/persona-features.ts";
import { HOSTILE_TOKEN, personaFeaturesBlock } from "../support/persona-features-block.ts";

describe("persona features report section", () => {
  const block = PersonaFeaturesResultsSchema.parse(personaFeaturesBlock());
  const page = renderPersonaFeatures(block).value;

  it("escapes every corpus token and model id", () => {
    expect(page).not.toContain(HOSTILE_TOKEN);
    expect(page).not.toContain("<img");
    expect(page).not.toMatch(/<script/i);
    expect(page).toContain("<mark>&lt;script&gt;alert(&#39;pf&#39;)&lt;/script&gt;</mark>");
    expect(page).toContain("m&lt;img src=x onerror=alert(1)&gt;");
    expect(page).toContain("<mark>you</mark>");
  });

  it("draws the card, the tables and the dose-response", () => {
    expect(page).toContain('<div class="pf-card" id="pf-latent-7"><h5>Latent 7 (top latent of medical)</h5>');
    // Speaker mix against the base rate, one row per speaker type.
    expect(page).toContain("<tr><td>villain</td><td>50.0%</td><td>20.0%</td></tr>");
    expect(page).toContain("<tr><td>assistant</td><td>0.0%</td><td>30.0%</td></tr>");
    expect(page.match(/<rect /g)).toHaveLength(3);
    expect(page).toContain("<td>clamp/latent=7</td><td>75.0%</td><td>[50.0%, 100.0%]</td>");
    expect(page).toContain("at most 5% of answers are harmful: 10.0%.");
    expect(page).toContain('<svg class="pf-dose"');
  });
});
