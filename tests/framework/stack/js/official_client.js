// Cozy's official JavaScript client (cozy-stack-client, pinned in package.json) against the stack
// double: the create / find / bulk / update / read calls cozy-konnector-libs make. Prints one JSON
// object of what each call answered. Usage: COZY_URL=... COZY_CREDENTIALS=... node official_client.js DOCTYPE
const CozyStackClient = require('cozy-stack-client').default

async function main () {
  const doctype = process.argv[2]
  const client = new CozyStackClient({ uri: process.env.COZY_URL.replace(/\/$/, ''), token: process.env.COZY_CREDENTIALS })
  const things = client.collection(doctype)
  const created = await things.create({ key: 'a', value: 1 }) // POST /data/:doctype/ (addData)
  const bulk = await things.updateAll([ // POST /data/:doctype/_bulk_docs (saveBills, bulk imports)
    { _id: 'b', key: 'b', value: 2 },
    { _id: 'c', key: 'c', value: 3 }
  ])
  const updated = await things.update({ ...created.data, value: 10 }) // PUT /data/:doctype/:id (updateOrCreate)
  const found = await things.find( // POST _index then _find (hydrateAndFilter, queryAll)
    { value: { $gt: 1 } },
    { indexedFields: ['value'], sort: [{ value: 'asc' }], limit: 100 }
  )
  const many = await things.getAll([created.data._id, 'b']) // POST /data/:doctype/_all_docs?include_docs=true
  const one = await things.get('c') // GET /data/:doctype/:id
  let refused = null
  try {
    await client.collection('io.example.notgranted').create({ x: 1 })
  } catch (error) {
    refused = error.status
  }
  console.log(JSON.stringify({ created, bulk, updated, found: found.data, many: many.data, one: one.data, refused }))
}

main().catch(error => {
  console.error(error.stack || String(error))
  process.exit(1)
})
