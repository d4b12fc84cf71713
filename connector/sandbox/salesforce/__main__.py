from connector.sandbox.salesforce.process import main

main()
