from api_gateway.bootstrap import main

main()
