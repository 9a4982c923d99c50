import BYSTNode
print(BYSTNodeVersion.string)
