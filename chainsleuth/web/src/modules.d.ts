// cytoscape-svg ships no types: it registers `cy.svg(options)` (export.ts calls it untyped).
declare module "cytoscape-svg" {
  const ext: import("cytoscape").Ext;
  export default ext;
}
