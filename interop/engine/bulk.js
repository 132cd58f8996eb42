'use strict';
// Adds background data to a FHIR R4 server, so that a benchmark's reads and
// searches run against tables of a realistic size rather than a handful of
// rows: N synthetic patients, each with an Encounter, ten Observations (five
// vital signs, five laboratory results, LOINC-coded, valueQuantity) and a
// Condition, 13 resources per patient, one transaction Bundle per patient,
// four transactions at a time. Patients carry the identifier
// urn:fhirguard:bench:bulk|patient-<i>.
//
//   node bulk.js <FHIR base URL> [N, default 300]
//
// Used for the gateway benchmark against a database-backed engine
// (benchmarks/README.md, "Gateway vs direct").

const BULK_SYSTEM = 'urn:fhirguard:bench:bulk';
const LOINC = 'http://loinc.org';
const OBS_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
const CODES = [
  ['vital-signs', '8867-4', 'Heart rate', '/min', 72],
  ['vital-signs', '8310-5', 'Body temperature', 'Cel', 36.8],
  ['vital-signs', '9279-1', 'Respiratory rate', '/min', 16],
  ['vital-signs', '29463-7', 'Body weight', 'kg', 70],
  ['vital-signs', '8302-2', 'Body height', 'cm', 172],
  ['laboratory', '2339-0', 'Glucose [Mass/volume] in Blood', 'mg/dL', 95],
  ['laboratory', '718-7', 'Hemoglobin [Mass/volume] in Blood', 'g/dL', 14],
  ['laboratory', '2093-3', 'Cholesterol [Mass/volume] in Serum or Plasma', 'mg/dL', 180],
  ['laboratory', '6690-2', 'Leukocytes [#/volume] in Blood', '10*3/uL', 6.5],
  ['laboratory', '777-3', 'Platelets [#/volume] in Blood', '10*3/uL', 250],
];

function patientBundle(i) {
  const p = `urn:uuid:${crypto.randomUUID()}`;
  const e = `urn:uuid:${crypto.randomUUID()}`;
  const subject = { reference: p };
  return {
    resourceType: 'Bundle', type: 'transaction', entry: [
      { fullUrl: p, request: { method: 'POST', url: 'Patient' }, resource: {
        resourceType: 'Patient', active: true, identifier: [{ system: BULK_SYSTEM, value: `patient-${i}` }],
        name: [{ family: `Bulk${i}`, given: ['Test'] }], gender: i % 2 ? 'male' : 'female',
        birthDate: `19${50 + (i % 50)}-0${1 + (i % 9)}-1${i % 10}` } },
      { fullUrl: e, request: { method: 'POST', url: 'Encounter' }, resource: {
        resourceType: 'Encounter', status: 'finished', subject,
        class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
        period: { start: '2024-03-01T09:00:00Z', end: '2024-03-01T09:30:00Z' } } },
      ...CODES.map(([category, code, display, unit, value], k) => ({ request: { method: 'POST', url: 'Observation' }, resource: {
        resourceType: 'Observation', status: 'final', category: [{ coding: [{ system: OBS_CATEGORY, code: category }] }],
        code: { coding: [{ system: LOINC, code, display }] }, subject, encounter: { reference: e },
        effectiveDateTime: `2024-03-0${1 + (k % 9)}T09:10:00Z`,
        valueQuantity: { value: value + (i % 7), unit, system: 'http://unitsofmeasure.org', code: unit } } })),
      { request: { method: 'POST', url: 'Condition' }, resource: {
        resourceType: 'Condition', subject, recordedDate: '2024-03-01',
        clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
        code: { coding: [{ system: 'http://snomed.info/sct', code: '38341003', display: 'Hypertension' }] } } },
    ],
  };
}

async function post(base, i) {
  const r = await fetch(base, {
    method: 'POST',
    headers: { 'Content-Type': 'application/fhir+json', Accept: 'application/fhir+json' },
    body: JSON.stringify(patientBundle(i)),
    signal: AbortSignal.timeout(60000),
  });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`bulk: transaction ${i}: ${r.status} ${text.slice(0, 300)}`);
}

async function bulk(base, n) {
  base = base.replace(/\/+$/, '');
  for (let i = 0; i < n; i += 4) {
    await Promise.all([0, 1, 2, 3].filter((k) => i + k < n).map((k) => post(base, i + k)));
  }
}

module.exports = { bulk, BULK_SYSTEM };

if (require.main === module) {
  const [base, n = '300'] = process.argv.slice(2);
  if (!base || !(Number(n) >= 0)) {
    console.error('usage: node bulk.js <FHIR base URL> [N]');
    process.exit(2);
  }
  const t0 = Date.now();
  bulk(base, Number(n)).then(() => console.log(`bulk: ${n} patients, ${13 * n} resources in ${((Date.now() - t0) / 1000).toFixed(1)} s`), (err) => {
    console.error(err.message);
    process.exit(1);
  });
}
