'use strict';
// Seeds a FHIR R4 server (the engine, or anything in front of it) with two
// patients and linked data, through its REST API (one create per resource),
// and returns the ids it created:
//
//   {
//     base, organization, practitioner, group, provenance, linking,
//     patients: {
//       A: { id, encounter, condition, observations: { vitals, laboratory, social } },
//       B: { ... same ... }
//     }
//   }
//
// - organization, practitioner: shared by both patients (managingOrganization,
//   generalPractitioner, Encounter.participant/serviceProvider, Condition.asserter).
// - group: a Group whose members are patients A and B.
// - provenance: targets A's vitals Observation, A's Encounter and patient A
//   (so it is in A's compartment: Provenance?patient=A); agent: the practitioner.
// - linking: an Observation whose subject is patient A and whose performer and
//   focus are patient B (a resource in both patients' compartments).
// Every resource carries identifier {system: SEED_SYSTEM, value: <name>}
// (e.g. "patient-A", "obs-A-vitals", "linking-observation"), so tests can find
// them by identifier too; the Provenance, whose R4 definition has no
// identifier (an engine that validates refuses one), carries
// "<SEED_SYSTEM>:provenance" in policy instead.
//
//   node seed.js <FHIR base>    prints the ids as JSON on stdout

const SEED_SYSTEM = 'urn:fhirguard:interop:seed';

const LOINC = 'http://loinc.org';
const OBS_CATEGORY = 'http://terminology.hl7.org/CodeSystem/observation-category';
const cat = (code) => [{ coding: [{ system: OBS_CATEGORY, code }] }];
const ident = (value) => [{ system: SEED_SYSTEM, value }];
const ref = (type, id) => ({ reference: `${type}/${id}` });

async function create(base, resource) {
  const r = await fetch(`${base}/${resource.resourceType}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/fhir+json', Accept: 'application/fhir+json' },
    body: JSON.stringify(resource),
    signal: AbortSignal.timeout(30000),
  });
  const text = await r.text();
  if (r.status !== 201) throw new Error(`seed: POST ${resource.resourceType}: ${r.status} ${text.slice(0, 300)}`);
  return JSON.parse(text).id;
}

async function seedPatient(base, name, family, given, birthDate, organization, practitioner) {
  const p = ref('Patient', await create(base, {
    resourceType: 'Patient', identifier: ident(`patient-${name}`), active: true,
    name: [{ family, given: [given] }], gender: name === 'A' ? 'female' : 'male', birthDate,
    managingOrganization: ref('Organization', organization),
    generalPractitioner: [ref('Practitioner', practitioner)],
  }));
  const id = p.reference.split('/')[1];
  const encounter = await create(base, {
    resourceType: 'Encounter', identifier: ident(`encounter-${name}`), status: 'finished',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'AMB' },
    subject: p, participant: [{ individual: ref('Practitioner', practitioner) }],
    serviceProvider: ref('Organization', organization),
    period: { start: '2024-03-01T09:00:00Z', end: '2024-03-01T09:30:00Z' },
  });
  const enc = ref('Encounter', encounter);
  const obs = (key, category, code, display, value, unit) => create(base, {
    resourceType: 'Observation', identifier: ident(`obs-${name}-${key}`), status: 'final',
    category: cat(category), code: { coding: [{ system: LOINC, code, display }] },
    subject: p, encounter: enc, performer: [ref('Practitioner', practitioner)],
    effectiveDateTime: '2024-03-01T09:10:00Z',
    ...(unit ? { valueQuantity: { value, unit, system: 'http://unitsofmeasure.org', code: unit } }
      : { valueCodeableConcept: { text: value } }),
  });
  const observations = {
    vitals: await obs('vitals', 'vital-signs', '8867-4', 'Heart rate', 72, '/min'),
    laboratory: await obs('laboratory', 'laboratory', '2339-0', 'Glucose [Mass/volume] in Blood', 95, 'mg/dL'),
    social: await obs('social', 'social-history', '72166-2', 'Tobacco smoking status', 'Never smoker'),
  };
  const condition = await create(base, {
    resourceType: 'Condition', identifier: ident(`condition-${name}`),
    clinicalStatus: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/condition-clinical', code: 'active' }] },
    code: { coding: [{ system: 'http://snomed.info/sct', code: '38341003', display: 'Hypertension' }] },
    subject: p, encounter: enc, asserter: ref('Practitioner', practitioner), recordedDate: '2024-03-01',
  });
  return { id, encounter, condition, observations };
}

// seed creates the data on the FHIR server at base and returns the ids.
async function seed(base) {
  base = base.replace(/\/+$/, '');
  const organization = await create(base, {
    resourceType: 'Organization', identifier: ident('organization'), active: true, name: 'Interop General Hospital',
  });
  const practitioner = await create(base, {
    resourceType: 'Practitioner', identifier: ident('practitioner'), active: true,
    name: [{ family: 'Careful', given: ['Casey'], prefix: ['Dr'] }],
  });
  const A = await seedPatient(base, 'A', 'Alpha', 'Alice', '1970-01-01', organization, practitioner);
  const B = await seedPatient(base, 'B', 'Bravo', 'Bob', '1980-02-02', organization, practitioner);
  const group = await create(base, {
    resourceType: 'Group', identifier: ident('group'), type: 'person', actual: true, name: 'Both seeded patients',
    member: [{ entity: ref('Patient', A.id) }, { entity: ref('Patient', B.id) }],
  });
  const provenance = await create(base, {
    resourceType: 'Provenance', policy: [`${SEED_SYSTEM}:provenance`], // R4 Provenance has no identifier
    target: [ref('Observation', A.observations.vitals), ref('Encounter', A.encounter), ref('Patient', A.id)],
    recorded: '2024-03-01T09:31:00Z',
    agent: [{ who: ref('Practitioner', practitioner), onBehalfOf: ref('Organization', organization) }],
  });
  const linking = await create(base, {
    resourceType: 'Observation', identifier: ident('linking-observation'), status: 'final',
    category: cat('survey'),
    code: { coding: [{ system: LOINC, code: '10157-6', display: 'History of family member diseases' }] },
    subject: ref('Patient', A.id), performer: [ref('Patient', B.id)], focus: [ref('Patient', B.id)],
    effectiveDateTime: '2024-03-02T10:00:00Z', valueString: 'reported by patient B about patient A',
  });
  return { base, organization, practitioner, group, provenance, linking, patients: { A, B } };
}

module.exports = { seed, SEED_SYSTEM };

if (require.main === module) {
  const base = process.argv[2];
  if (!base) {
    console.error('usage: node seed.js <FHIR base URL>');
    process.exit(2);
  }
  seed(base).then((ids) => console.log(JSON.stringify(ids, null, 2)), (err) => {
    console.error(err.message);
    process.exit(1);
  });
}
